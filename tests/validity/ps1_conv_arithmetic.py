"""Validity catalogue for ps1/conv_arithmetic: alternative correct answers and known mistakes."""

from validity_harness import Catalogue

catalogue = Catalogue(
    "ps1/conv_arithmetic",
    tests={
        "dense_param_count": ["test_dense_param_count"],
        "conv2d_param_count": ["test_conv2d_param_count"],
        "conv2d_output_size": ["test_conv2d_output_size"],
        "conv_transpose2d_output_size": ["test_conv_transpose2d_output_size"],
    },
)

# --- dense_param_count ------------------------------------------------------------------------


@catalogue.correct
def dense_param_count(in_shape, out_shape, bias=False):
    """math.prod over the shapes"""
    import math

    n_in = in_shape if isinstance(in_shape, int) else math.prod(in_shape)
    n_out = out_shape if isinstance(out_shape, int) else math.prod(out_shape)
    return n_in * n_out + bias * n_out


@catalogue.correct
def dense_param_count(in_shape, out_shape, bias=False):
    """numpy product (returns numpy integers) and an explicit bias branch"""
    import numpy as np

    n_in = np.prod(np.atleast_1d(in_shape))
    n_out = np.prod(np.atleast_1d(out_shape))
    total = n_in * n_out
    if bias:
        total += n_out
    return total


@catalogue.correct
def dense_param_count(in_shape, out_shape, bias=False):
    """counts the parameters of a real torch.nn.Linear"""
    import math

    import torch

    def size(shape):
        return shape if isinstance(shape, int) else math.prod(shape)

    layer = torch.nn.Linear(size(in_shape), size(out_shape), bias=bias, device="meta")
    return sum(p.numel() for p in layer.parameters())


@catalogue.correct
def dense_param_count(in_shape, out_shape, bias=False):
    """a loop over the output units, each with one weight per input (and its bias); sizes by torch.Size"""
    import torch

    n_in = torch.Size([in_shape] if isinstance(in_shape, int) else in_shape).numel()
    n_out = torch.Size([out_shape] if isinstance(out_shape, int) else out_shape).numel()
    total = 0
    for _unit in range(n_out):
        total += n_in + (1 if bias else 0)
    return total


@catalogue.wrong("test_dense_param_count", "bias on by default")
def dense_param_count(in_shape, out_shape, bias=True):
    import math

    return math.prod(in_shape) * math.prod(out_shape) + (math.prod(out_shape) if bias else 0)


@catalogue.wrong("test_dense_param_count", "one bias per input instead of per output")
def dense_param_count(in_shape, out_shape, bias=False):
    import math

    n_in, n_out = math.prod(in_shape), math.prod(out_shape)
    return n_in * n_out + (n_in if bias else 0)


@catalogue.wrong("test_dense_param_count", "adds the sizes instead of multiplying")
def dense_param_count(in_shape, out_shape, bias=False):
    import math

    n_in, n_out = math.prod(in_shape), math.prod(out_shape)
    return n_in + n_out + (n_out if bias else 0)


@catalogue.wrong("test_dense_param_count", "ignores the bias flag")
def dense_param_count(in_shape, out_shape, bias=False):
    import math

    return math.prod(in_shape) * math.prod(out_shape)


@catalogue.wrong("test_dense_param_count", "forgets the channels (H*W only)")
def dense_param_count(in_shape, out_shape, bias=False):
    n_in = in_shape[0] * in_shape[1] if len(in_shape) > 1 else in_shape[0]
    n_out = out_shape[0] * out_shape[1] if len(out_shape) > 1 else out_shape[0]
    return n_in * n_out + (n_out if bias else 0)


@catalogue.wrong("test_dense_param_count", "returns a float")
def dense_param_count(in_shape, out_shape, bias=False):
    import math

    return float(math.prod(in_shape) * math.prod(out_shape) + (math.prod(out_shape) if bias else 0))


@catalogue.wrong("test_dense_param_count", "an int subclass that equals everything")
def dense_param_count(in_shape, out_shape, bias=False):
    class Anything(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    return Anything(0)


# --- conv2d_param_count -----------------------------------------------------------------------


@catalogue.correct
def conv2d_param_count(in_channels, out_channels, kernel_size, bias=True):
    """counts the parameters of a real torch.nn.Conv2d"""
    import torch

    layer = torch.nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias)
    return sum(p.numel() for p in layer.parameters())


@catalogue.correct
def conv2d_param_count(in_channels, out_channels, kernel_size, bias=True):
    """per-filter count times the number of filters"""
    k_h, k_w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    per_filter = in_channels * k_h * k_w + int(bias)
    return out_channels * per_filter


@catalogue.correct
def conv2d_param_count(in_channels, out_channels, kernel_size, bias=True):
    """the sizes of the weight and bias tensors F.conv2d takes, made on the meta device"""
    import torch

    k_h, k_w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    weight = torch.empty(out_channels, in_channels, k_h, k_w, device="meta")
    bias_term = torch.empty(out_channels if bias else 0, device="meta")
    return weight.numel() + bias_term.numel()


@catalogue.wrong("test_conv2d_param_count", "forgets in_channels")
def conv2d_param_count(in_channels, out_channels, kernel_size, bias=True):
    k_h, k_w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    return out_channels * k_h * k_w + (out_channels if bias else 0)


@catalogue.wrong("test_conv2d_param_count", "forgets the bias")
def conv2d_param_count(in_channels, out_channels, kernel_size, bias=True):
    k_h, k_w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    return out_channels * in_channels * k_h * k_w


@catalogue.wrong("test_conv2d_param_count", "one bias per input channel")
def conv2d_param_count(in_channels, out_channels, kernel_size, bias=True):
    k_h, k_w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    return out_channels * in_channels * k_h * k_w + (in_channels if bias else 0)


@catalogue.wrong("test_conv2d_param_count", "squares the first kernel side")
def conv2d_param_count(in_channels, out_channels, kernel_size, bias=True):
    k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
    return out_channels * in_channels * k * k + (out_channels if bias else 0)


@catalogue.wrong("test_conv2d_param_count", "bias even when bias=False")
def conv2d_param_count(in_channels, out_channels, kernel_size, bias=True):
    k_h, k_w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    return out_channels * (in_channels * k_h * k_w + 1)


@catalogue.wrong("test_conv2d_param_count", "only accepts an int kernel", raises=TypeError)
def conv2d_param_count(in_channels, out_channels, kernel_size, bias=True):
    return out_channels * in_channels * kernel_size * kernel_size + (out_channels if bias else 0)


# --- conv2d_output_size -----------------------------------------------------------------------


@catalogue.correct
def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """int() of true division (equal to floor for the non-negative numerators that occur)"""
    return int((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1


@catalogue.correct
def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """counts kernel placements one by one"""
    span = dilation * (kernel_size - 1) + 1
    count, start = 0, 0
    while start + span <= size + 2 * padding:
        count += 1
        start += stride
    return count


@catalogue.correct
def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """asks PyTorch for the shape"""
    import torch

    x = torch.zeros(1, 1, size, 1)
    w = torch.zeros(1, 1, kernel_size, 1)
    y = torch.nn.functional.conv2d(x, w, stride=(stride, 1), padding=(padding, 0), dilation=(dilation, 1))
    return y.shape[2]


@catalogue.correct
def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """the window starts counted by range()"""
    span = dilation * (kernel_size - 1) + 1
    return len(range(0, size + 2 * padding - span + 1, stride))


@catalogue.wrong("test_conv2d_output_size", "ceil instead of floor")
def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    import math

    return math.ceil((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1


@catalogue.wrong("test_conv2d_output_size", "round instead of floor")
def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return round((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1


@catalogue.wrong("test_conv2d_output_size", "ignores dilation")
def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - kernel_size) // stride + 1


@catalogue.wrong("test_conv2d_output_size", "dilated span d*k instead of d*(k-1)+1")
def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - dilation * kernel_size) // stride + 1


@catalogue.wrong("test_conv2d_output_size", "padding on one side only")
def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + padding - dilation * (kernel_size - 1) - 1) // stride + 1


@catalogue.wrong("test_conv2d_output_size", "forgets the +1")
def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride


@catalogue.wrong("test_conv2d_output_size", "divides the input by the stride first")
def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding) // stride - dilation * (kernel_size - 1)


@catalogue.wrong("test_conv2d_output_size", "returns a float from true division")
def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1


# --- conv_transpose2d_output_size ---------------------------------------------------------------


@catalogue.correct
def conv_transpose2d_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    """last placement's start plus the dilated span, minus the cropped padding"""
    span = dilation * (kernel_size - 1) + 1
    return (size - 1) * stride + span - 2 * padding + output_padding


@catalogue.correct
def conv_transpose2d_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    """asks PyTorch for the shape"""
    import torch

    x = torch.zeros(1, 1, size, 1)
    w = torch.zeros(1, 1, kernel_size, 1)
    y = torch.nn.functional.conv_transpose2d(
        x,
        w,
        stride=(stride, 1),
        padding=(padding, 0),
        output_padding=(output_padding, 0),
        dilation=(dilation, 1),
    )
    return int(y.shape[2])


@catalogue.correct
def conv_transpose2d_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    """a loop over the input positions, following the furthest pixel a stamp reaches"""
    reach = 0
    for position in range(size):
        reach = max(reach, position * stride + dilation * (kernel_size - 1) + 1)
    return reach - 2 * padding + output_padding


@catalogue.wrong("test_conv_transpose2d_output_size", "ignores output_padding")
def conv_transpose2d_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    return (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + 1


@catalogue.wrong("test_conv_transpose2d_output_size", "ignores dilation")
def conv_transpose2d_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    return (size - 1) * stride - 2 * padding + kernel_size + output_padding


@catalogue.wrong("test_conv_transpose2d_output_size", "padding subtracted once")
def conv_transpose2d_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    return (size - 1) * stride - padding + dilation * (kernel_size - 1) + output_padding + 1


@catalogue.wrong("test_conv_transpose2d_output_size", "size*stride instead of (size-1)*stride")
def conv_transpose2d_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    return size * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1


@catalogue.wrong("test_conv_transpose2d_output_size", "subtracts output_padding")
def conv_transpose2d_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    return (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) - output_padding + 1


@catalogue.wrong("test_conv_transpose2d_output_size", "uses the convolution's formula")
def conv_transpose2d_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
