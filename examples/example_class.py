"""The bundled example class, graded by the main job and by the end-to-end test.

Each student maps ``"<assignment>/<notebook>"`` to what they handed in:
- ``SOLUTION``: every answer cell of that notebook holds the instructor's solution;
- ``"missing"``: the notebook was not handed in;
- a dict ``{grade_id: SOLUTION or text}``: those cells answered, the rest left as stubs.
A student given ``SOLUTION`` itself answers everything. Solutions are copied from ``source/``
when the class is built, so no solution is stored here. The expected grades are in
``expected_grades.csv`` beside this file.
"""

SOLUTION = "solution"

# Plausible mistakes a student makes, one per function (each is also in the validity catalogue).
DENSE_WITH_BIAS_BY_DEFAULT = """
def dense_param_count(in_shape, out_shape, bias=True):
    n_in = 1
    for d in in_shape:
        n_in *= d
    n_out = 1
    for d in out_shape:
        n_out *= d
    return n_in * n_out + (n_out if bias else 0)
"""

CONV_PARAMS_WITHOUT_IN_CHANNELS = """
def conv2d_param_count(in_channels, out_channels, kernel_size, bias=True):
    k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
    return out_channels * k * k + (out_channels if bias else 0)
"""

CONV_SIZE_WITH_CEIL = """
import math

def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return math.ceil((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1
"""

TRANSPOSED_SIZE_WITHOUT_OUTPUT_PADDING = """
def conv_transpose2d_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    return (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + 1
"""

STUDENTS = {
    "example-complete": SOLUTION,
    "example-blank": {},
    "example-partial": {
        "ps1/conv_arithmetic": {
            "dense_param_count": SOLUTION,
            "conv2d_param_count": SOLUTION,
            "large_inputs_answer": "Too many parameters: the weight matrix grows with the image.",
        },
    },
    "example-wrong": {
        "ps1/conv_arithmetic": {
            "dense_param_count": DENSE_WITH_BIAS_BY_DEFAULT,
            "conv2d_param_count": CONV_PARAMS_WITHOUT_IN_CHANNELS,
            "conv2d_output_size": CONV_SIZE_WITH_CEIL,
            "conv_transpose2d_output_size": TRANSPOSED_SIZE_WITHOUT_OUTPUT_PADDING,
        },
    },
}
