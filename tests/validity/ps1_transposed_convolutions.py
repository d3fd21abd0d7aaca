"""Validity catalogue for ps1/transposed_convolutions: alternative correct answers and known mistakes."""

import torch
from validity_harness import Catalogue

catalogue = Catalogue(
    "ps1/transposed_convolutions",
    tests={
        "conv2d_matrix": ["test_conv2d_matrix"],
        "conv_transpose2d": ["test_conv_transpose2d", "test_conv_transpose2d_no_shortcuts"],
        "UndoableReLU": ["test_UndoableReLU"],
        "UndoableMaxPool2d": ["test_UndoableMaxPool2d"],
        "UndoableConv2d": ["test_UndoableConv2d"],
        "UndoableSequential": ["test_UndoableSequential"],
        "overlap_counts": ["test_overlap_counts"],
    },
)

# The variants below are executed in the notebook's namespace (torch, F, nn imported there).
F = torch.nn.functional
nn = torch.nn

# --- conv2d_matrix ----------------------------------------------------------------------------


@catalogue.correct
def conv2d_matrix(weight, input_size, stride=1, padding=0):
    """convolves every basis image: the columns of M are the images of the unit vectors"""
    c_in = weight.shape[1]
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    basis = torch.eye(c_in * h * w, dtype=weight.dtype).reshape(-1, c_in, h, w)
    return F.conv2d(basis, weight, stride=stride, padding=padding).reshape(c_in * h * w, -1).T


@catalogue.correct
def conv2d_matrix(weight, input_size, stride=1, padding=0):
    """pastes the kernel into a padded canvas per output position, then crops the padding"""
    c_out, c_in, k_h, k_w = weight.shape
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    out_h, out_w = (h + 2 * padding - k_h) // stride + 1, (w + 2 * padding - k_w) // stride + 1
    rows = torch.zeros(c_out, out_h, out_w, c_in, h + 2 * padding, w + 2 * padding, dtype=weight.dtype)
    for i in range(out_h):
        for j in range(out_w):
            rows[:, i, j, :, i * stride : i * stride + k_h, j * stride : j * stride + k_w] = weight
    cropped = rows[..., padding : padding + h, padding : padding + w]
    return cropped.reshape(c_out * out_h * out_w, c_in * h * w)


@catalogue.correct
def conv2d_matrix(weight, input_size, stride=1, padding=0):
    """the Jacobian of the (linear) convolution, from autograd"""
    c_in = weight.shape[1]
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size

    def conv(flat):
        return F.conv2d(flat.reshape(1, c_in, h, w), weight, stride=stride, padding=padding).flatten()

    return torch.autograd.functional.jacobian(conv, torch.zeros(c_in * h * w, dtype=weight.dtype))


@catalogue.correct
def conv2d_matrix(weight, input_size, stride=1, padding=0):
    """F.unfold of an image of pixel numbers tells which input pixel each kernel tap reads"""
    c_out, c_in, k_h, k_w = weight.shape
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    numbers = torch.arange(1, c_in * h * w + 1, dtype=torch.float64).reshape(1, c_in, h, w)
    taps = F.unfold(numbers, (k_h, k_w), padding=padding, stride=stride)[0].long().T - 1  # (outputs, taps)
    taps[taps < 0] = c_in * h * w  # taps in the padding read a spare column, dropped below
    n_out = taps.shape[0]
    matrix = weight.new_zeros(c_out, n_out, c_in * h * w + 1)
    values = weight.reshape(c_out, 1, -1).expand(-1, n_out, -1)  # taps in unfold's order (c, a, b)
    matrix.scatter_(2, taps.expand(c_out, -1, -1), values)
    return matrix[:, :, :-1].reshape(c_out * n_out, c_in * h * w)


@catalogue.wrong("test_conv2d_matrix", "flips the kernel (a true convolution)")
def conv2d_matrix(weight, input_size, stride=1, padding=0):
    c_in = weight.shape[1]
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    basis = torch.eye(c_in * h * w).reshape(-1, c_in, h, w)
    flipped = weight.flip(-1, -2)
    return F.conv2d(basis, flipped, stride=stride, padding=padding).reshape(c_in * h * w, -1).T


@catalogue.wrong("test_conv2d_matrix", "forgets to shift the window by the padding")
def conv2d_matrix(weight, input_size, stride=1, padding=0):
    c_out, c_in, k_h, k_w = weight.shape
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    out_h, out_w = (h + 2 * padding - k_h) // stride + 1, (w + 2 * padding - k_w) // stride + 1
    m = torch.zeros(c_out, out_h, out_w, c_in, h, w)
    for i in range(out_h):
        for j in range(out_w):
            for a in range(k_h):
                for b in range(k_w):
                    r, q = i * stride + a, j * stride + b
                    if r < h and q < w:
                        m[:, i, j, :, r, q] = weight[:, :, a, b]
    return m.reshape(c_out * out_h * out_w, -1)


@catalogue.wrong("test_conv2d_matrix", "moves the window by 1 instead of the stride")
def conv2d_matrix(weight, input_size, stride=1, padding=0):
    c_out, c_in, k_h, k_w = weight.shape
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    out_h, out_w = (h + 2 * padding - k_h) // stride + 1, (w + 2 * padding - k_w) // stride + 1
    m = torch.zeros(c_out, out_h, out_w, c_in, h, w)
    for i in range(out_h):
        for j in range(out_w):
            for a in range(k_h):
                for b in range(k_w):
                    r, q = i - padding + a, j - padding + b
                    if 0 <= r < h and 0 <= q < w:
                        m[:, i, j, :, r, q] = weight[:, :, a, b]
    return m.reshape(c_out * out_h * out_w, -1)


@catalogue.wrong("test_conv2d_matrix", "returns the transpose (inputs x outputs)")
def conv2d_matrix(weight, input_size, stride=1, padding=0):
    c_in = weight.shape[1]
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    basis = torch.eye(c_in * h * w).reshape(-1, c_in, h, w)
    return F.conv2d(basis, weight, stride=stride, padding=padding).reshape(c_in * h * w, -1)


@catalogue.wrong("test_conv2d_matrix", "flattens the input as (H, W, C) instead of (C, H, W)")
def conv2d_matrix(weight, input_size, stride=1, padding=0):
    c_in = weight.shape[1]
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    basis = torch.eye(c_in * h * w).reshape(-1, h, w, c_in).permute(0, 3, 1, 2)
    return F.conv2d(basis, weight, stride=stride, padding=padding).reshape(c_in * h * w, -1).T


@catalogue.wrong("test_conv2d_matrix", "rounds the output size up instead of down")
def conv2d_matrix(weight, input_size, stride=1, padding=0):
    import math

    c_out, c_in, k_h, k_w = weight.shape
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    out_h = math.ceil((h + 2 * padding - k_h) / stride) + 1
    out_w = math.ceil((w + 2 * padding - k_w) / stride) + 1
    m = torch.zeros(c_out, out_h, out_w, c_in, h, w)
    for i in range(out_h):
        for j in range(out_w):
            for a in range(k_h):
                for b in range(k_w):
                    r, q = i * stride - padding + a, j * stride - padding + b
                    if 0 <= r < h and 0 <= q < w:
                        m[:, i, j, :, r, q] = weight[:, :, a, b]
    return m.reshape(c_out * out_h * out_w, -1)


@catalogue.wrong("test_conv2d_matrix", "uses the first input channel's kernel for every channel")
def conv2d_matrix(weight, input_size, stride=1, padding=0):
    c_in = weight.shape[1]
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    shared = weight[:, :1].expand_as(weight).contiguous()
    basis = torch.eye(c_in * h * w).reshape(-1, c_in, h, w)
    return F.conv2d(basis, shared, stride=stride, padding=padding).reshape(c_in * h * w, -1).T


# --- conv_transpose2d -------------------------------------------------------------------------


@catalogue.correct
def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    """einsum stamps, added with a loop over the kernel offsets into strided slices"""
    s_h, s_w = (stride, stride) if isinstance(stride, int) else stride
    p_h, p_w = (padding, padding) if isinstance(padding, int) else padding
    o_h, o_w = (output_padding, output_padding) if isinstance(output_padding, int) else output_padding
    n, _, h, w = x.shape
    _, c_out, k_h, k_w = weight.shape
    stamps = torch.einsum("nihw,iokl->noklhw", x, weight)
    full_h, full_w = (h - 1) * s_h + k_h + o_h, (w - 1) * s_w + k_w + o_w
    canvas = x.new_zeros(n, c_out, full_h, full_w)
    for a in range(k_h):
        for b in range(k_w):
            canvas[:, :, a : a + (h - 1) * s_h + 1 : s_h, b : b + (w - 1) * s_w + 1 : s_w] += stamps[
                :, :, a, b
            ]
    return canvas[:, :, p_h : full_h - p_h, p_w : full_w - p_w]


@catalogue.correct
def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    """zero insertion, padding by k - 1 - p, and an ordinary convolution with the flipped kernel"""
    s_h, s_w = (stride, stride) if isinstance(stride, int) else stride
    p_h, p_w = (padding, padding) if isinstance(padding, int) else padding
    o_h, o_w = (output_padding, output_padding) if isinstance(output_padding, int) else output_padding
    n, c_in, h, w = x.shape
    k_h, k_w = weight.shape[2:]
    dilated = x.new_zeros(n, c_in, (h - 1) * s_h + 1, (w - 1) * s_w + 1)
    dilated[:, :, ::s_h, ::s_w] = x
    # F.pad crops where the amount is negative (padding larger than k - 1)
    dilated = F.pad(dilated, (k_w - 1 - p_w, k_w - 1 - p_w + o_w, k_h - 1 - p_h, k_h - 1 - p_h + o_h))
    return F.conv2d(dilated, weight.transpose(0, 1).flip(-1, -2))


@catalogue.correct
def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    """index_add_ of every stamp into the flattened canvas"""
    s_h, s_w = (stride, stride) if isinstance(stride, int) else stride
    p_h, p_w = (padding, padding) if isinstance(padding, int) else padding
    o_h, o_w = (output_padding, output_padding) if isinstance(output_padding, int) else output_padding
    n, c_in, h, w = x.shape
    _, c_out, k_h, k_w = weight.shape
    full_h, full_w = (h - 1) * s_h + k_h + o_h, (w - 1) * s_w + k_w + o_w
    rows = (torch.arange(h) * s_h)[:, None, None, None] + torch.arange(k_h)[None, None, :, None]
    cols = (torch.arange(w) * s_w)[None, :, None, None] + torch.arange(k_w)[None, None, None, :]
    target = (rows * full_w + cols).reshape(-1)  # (h, w, k_h, k_w) flattened
    stamps = torch.einsum("nihw,iokl->nohwkl", x, weight).reshape(n, c_out, -1)
    canvas = x.new_zeros(n, c_out, full_h * full_w).index_add_(2, target, stamps)
    return canvas.reshape(n, c_out, full_h, full_w)[:, :, p_h : full_h - p_h, p_w : full_w - p_w]


@catalogue.correct
def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    """stamps put in place by einsum with one-hot placement matrices, one per axis"""

    def pair(value):
        return (value, value) if isinstance(value, int) else tuple(value)

    (s_h, s_w), (p_h, p_w), (o_h, o_w) = pair(stride), pair(padding), pair(output_padding)
    n, c_in, h, w = x.shape
    _, c_out, k_h, k_w = weight.shape
    full_h, full_w = (h - 1) * s_h + k_h + o_h, (w - 1) * s_w + k_w + o_w

    def placement(size, k, s, full):
        """(size, k, full): input position i with kernel offset a lands on i * s + a."""
        return F.one_hot(torch.arange(size)[:, None] * s + torch.arange(k)[None, :], full).to(x.dtype)

    stamps = torch.einsum("nihw,ioab->nohwab", x, weight)
    canvas = torch.einsum("nohwab,hap->nopwb", stamps, placement(h, k_h, s_h, full_h))
    canvas = torch.einsum("nopwb,wbq->nopq", canvas, placement(w, k_w, s_w, full_w))
    return canvas[:, :, p_h : full_h - p_h, p_w : full_w - p_w]


@catalogue.wrong("test_conv_transpose2d", "ignores output_padding")
def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    s = (stride, stride) if isinstance(stride, int) else tuple(stride)
    p = (padding, padding) if isinstance(padding, int) else tuple(padding)
    n, c_in, h, w = x.shape
    _, c_out, k_h, k_w = weight.shape
    stamps = weight.reshape(c_in, -1).T @ x.reshape(n, c_in, h * w)
    full = ((h - 1) * s[0] + k_h, (w - 1) * s[1] + k_w)
    canvas = F.fold(stamps, full, (k_h, k_w), stride=s)
    return canvas[:, :, p[0] : full[0] - p[0], p[1] : full[1] - p[1]]


@catalogue.wrong("test_conv_transpose2d", "crops the padding on one side only")
def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    s = (stride, stride) if isinstance(stride, int) else tuple(stride)
    p = (padding, padding) if isinstance(padding, int) else tuple(padding)
    op = (output_padding, output_padding) if isinstance(output_padding, int) else tuple(output_padding)
    n, c_in, h, w = x.shape
    _, c_out, k_h, k_w = weight.shape
    stamps = weight.reshape(c_in, -1).T @ x.reshape(n, c_in, h * w)
    full = ((h - 1) * s[0] + k_h + op[0], (w - 1) * s[1] + k_w + op[1])
    canvas = F.fold(stamps, full, (k_h, k_w), stride=s)
    return canvas[:, :, 2 * p[0] :, 2 * p[1] :]


@catalogue.wrong("test_conv_transpose2d", "reads the weight as (C_out, C_in, k, k)")
def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    s = (stride, stride) if isinstance(stride, int) else tuple(stride)
    p = (padding, padding) if isinstance(padding, int) else tuple(padding)
    op = (output_padding, output_padding) if isinstance(output_padding, int) else tuple(output_padding)
    n, c_in, h, w = x.shape
    c_out, _, k_h, k_w = weight.shape
    stamps = torch.einsum("nihw,oikl->noklhw", x, weight).reshape(n, -1, h * w)
    full = ((h - 1) * s[0] + k_h + op[0], (w - 1) * s[1] + k_w + op[1])
    canvas = F.fold(stamps, full, (k_h, k_w), stride=s)
    return canvas[:, :, p[0] : full[0] - p[0], p[1] : full[1] - p[1]]


@catalogue.wrong("test_conv_transpose2d", "flips the kernel")
def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    s = (stride, stride) if isinstance(stride, int) else tuple(stride)
    p = (padding, padding) if isinstance(padding, int) else tuple(padding)
    op = (output_padding, output_padding) if isinstance(output_padding, int) else tuple(output_padding)
    n, c_in, h, w = x.shape
    _, c_out, k_h, k_w = weight.shape
    stamps = weight.flip(-1, -2).reshape(c_in, -1).T @ x.reshape(n, c_in, h * w)
    full = ((h - 1) * s[0] + k_h + op[0], (w - 1) * s[1] + k_w + op[1])
    canvas = F.fold(stamps, full, (k_h, k_w), stride=s)
    return canvas[:, :, p[0] : full[0] - p[0], p[1] : full[1] - p[1]]


@catalogue.wrong("test_conv_transpose2d", "accepts ints only, not (height, width) pairs")
def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    n, c_in, h, w = x.shape
    _, c_out, k_h, k_w = weight.shape
    stamps = weight.reshape(c_in, -1).T @ x.reshape(n, c_in, h * w)
    full_h = (h - 1) * stride + k_h + output_padding
    full_w = (w - 1) * stride + k_w + output_padding
    canvas = F.fold(stamps, (full_h, full_w), (k_h, k_w), stride=stride)
    return canvas[:, :, padding : full_h - padding, padding : full_w - padding]


@catalogue.wrong("test_conv_transpose2d", "sums over the batch (one image out)")
def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    s = (stride, stride) if isinstance(stride, int) else tuple(stride)
    p = (padding, padding) if isinstance(padding, int) else tuple(padding)
    op = (output_padding, output_padding) if isinstance(output_padding, int) else tuple(output_padding)
    n, c_in, h, w = x.shape
    _, c_out, k_h, k_w = weight.shape
    stamps = weight.reshape(c_in, -1).T @ x.reshape(n, c_in, h * w)
    full = ((h - 1) * s[0] + k_h + op[0], (w - 1) * s[1] + k_w + op[1])
    canvas = F.fold(stamps.sum(0, keepdim=True).expand(n, -1, -1), full, (k_h, k_w), stride=s)
    return canvas[:, :, p[0] : full[0] - p[0], p[1] : full[1] - p[1]]


@catalogue.wrong("test_conv_transpose2d_no_shortcuts", "dilates the input in place, overwriting x")
def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    s_h, s_w = (stride, stride) if isinstance(stride, int) else stride
    p_h, p_w = (padding, padding) if isinstance(padding, int) else padding
    o_h, o_w = (output_padding, output_padding) if isinstance(output_padding, int) else output_padding
    n, c_in, h, w = x.shape
    _, c_out, k_h, k_w = weight.shape
    stamps = torch.einsum("nihw,iokl->noklhw", x, weight)
    full_h, full_w = (h - 1) * s_h + k_h + o_h, (w - 1) * s_w + k_w + o_w
    canvas = x.new_zeros(n, c_out, full_h, full_w)
    for a in range(k_h):
        for b in range(k_w):
            canvas[:, :, a : a + (h - 1) * s_h + 1 : s_h, b : b + (w - 1) * s_w + 1 : s_w] += stamps[
                :, :, a, b
            ]
    x.mul_(0)  # "frees" the input: the caller's tensor is gone
    return canvas[:, :, p_h : full_h - p_h, p_w : full_w - p_w]


@catalogue.wrong("test_conv_transpose2d_no_shortcuts", "calls F.conv_transpose2d")
def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    return F.conv_transpose2d(x, weight, stride=stride, padding=padding, output_padding=output_padding)


@catalogue.wrong("test_conv_transpose2d_no_shortcuts", "calls torch's function through an earlier alias")
def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0, _upsample=torch.conv_transpose2d):
    return _upsample(x, weight, None, stride, padding, output_padding)


@catalogue.wrong("test_conv_transpose2d_no_shortcuts", "an nn.ConvTranspose2d with the weight copied in")
def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    layer = nn.ConvTranspose2d(
        weight.shape[0], weight.shape[1], tuple(weight.shape[2:]), stride, padding, output_padding, bias=False
    )
    with torch.no_grad():
        layer.weight.copy_(weight)
        return layer(x)


@catalogue.wrong("test_conv_transpose2d_no_shortcuts", "torch.convolution with transposed=True")
def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    def pair(v):
        return [v, v] if isinstance(v, int) else list(v)

    return torch.convolution(
        x, weight, None, pair(stride), pair(padding), [1, 1], True, pair(output_padding), 1
    )


@catalogue.wrong("test_conv_transpose2d_no_shortcuts", "the input gradient of a convolution via .backward()")
def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    (s_h, s_w), (p_h, p_w), (o_h, o_w) = pair(stride), pair(padding), pair(output_padding)
    n, _, h, w = x.shape
    k_h, k_w = weight.shape[2:]
    size = ((h - 1) * s_h - 2 * p_h + k_h + o_h, (w - 1) * s_w - 2 * p_w + k_w + o_w)
    leaf = torch.zeros(n, weight.shape[1], *size, requires_grad=True)
    F.conv2d(leaf, weight, stride=(s_h, s_w), padding=(p_h, p_w)).mul(x).sum().backward()
    return leaf.grad


@catalogue.wrong("test_conv_transpose2d_no_shortcuts", "torch.autograd.grad of a convolution")
def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    (s_h, s_w), (p_h, p_w), (o_h, o_w) = pair(stride), pair(padding), pair(output_padding)
    n, _, h, w = x.shape
    k_h, k_w = weight.shape[2:]
    size = ((h - 1) * s_h - 2 * p_h + k_h + o_h, (w - 1) * s_w - 2 * p_w + k_w + o_w)
    leaf = torch.zeros(n, weight.shape[1], *size).requires_grad_()
    out = F.conv2d(leaf, weight, stride=(s_h, s_w), padding=(p_h, p_w))
    return torch.autograd.grad(out, leaf, x)[0]


@catalogue.wrong("test_conv_transpose2d_no_shortcuts", "torch.nn.grad.conv2d_input")
def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    (s_h, s_w), (p_h, p_w), (o_h, o_w) = pair(stride), pair(padding), pair(output_padding)
    n, _, h, w = x.shape
    k_h, k_w = weight.shape[2:]
    size = (n, weight.shape[1], (h - 1) * s_h - 2 * p_h + k_h + o_h, (w - 1) * s_w - 2 * p_w + k_w + o_w)
    return torch.nn.grad.conv2d_input(size, weight, x, stride=(s_h, s_w), padding=(p_h, p_w))


@catalogue.wrong("test_conv_transpose2d_no_shortcuts", "a vector-Jacobian product with torch.func.vjp")
def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    (s_h, s_w), (p_h, p_w), (o_h, o_w) = pair(stride), pair(padding), pair(output_padding)
    n, _, h, w = x.shape
    k_h, k_w = weight.shape[2:]
    size = (n, weight.shape[1], (h - 1) * s_h - 2 * p_h + k_h + o_h, (w - 1) * s_w - 2 * p_w + k_w + o_w)
    _, pullback = torch.func.vjp(
        lambda z: F.conv2d(z, weight, stride=(s_h, s_w), padding=(p_h, p_w)), x.new_zeros(size)
    )
    return pullback(x)[0]


# --- UndoableReLU -----------------------------------------------------------------------------


@catalogue.correct
class UndoableReLU(nn.ReLU):
    """clamp at zero"""

    def undo(self, y):
        return y.clamp(min=0)


@catalogue.correct
class UndoableReLU(nn.ReLU):
    """multiplies by the signal's own sign mask, and writes its own forward"""

    def forward(self, x):
        return F.relu(x)

    def undo(self, y):
        return y * (y > 0)


@catalogue.correct
class UndoableReLU(nn.ReLU):
    """undo runs the layer's own ReLU on the signal: super().forward(y)"""

    def undo(self, y):
        return super().forward(y)


@catalogue.wrong("test_UndoableReLU", "masks with the forward input (backpropagation)")
class UndoableReLU(nn.ReLU):
    def forward(self, x):
        self.mask = x > 0
        return torch.relu(x)

    def undo(self, y):
        return y * self.mask


@catalogue.wrong("test_UndoableReLU", "guided backpropagation (both masks)")
class UndoableReLU(nn.ReLU):
    def forward(self, x):
        self.mask = x > 0
        return torch.relu(x)

    def undo(self, y):
        return torch.relu(y) * self.mask


@catalogue.wrong("test_UndoableReLU", "passes the signal through unchanged")
class UndoableReLU(nn.ReLU):
    def undo(self, y):
        return y


@catalogue.wrong("test_UndoableReLU", "absolute value instead of rectification")
class UndoableReLU(nn.ReLU):
    def undo(self, y):
        return y.abs()


# --- UndoableMaxPool2d ------------------------------------------------------------------------


@catalogue.correct
class UndoableMaxPool2d(nn.MaxPool2d):
    """scatters the values into a flat zero image at the switches"""

    def forward(self, x):
        out, self.where = F.max_pool2d(x, self.kernel_size, self.stride, return_indices=True)
        self.shape = x.shape
        return out

    def undo(self, y):
        n, c, h, w = self.shape
        flat = y.new_zeros(n, c, h * w)
        flat.scatter_(2, self.where.reshape(n, c, -1), y.reshape(n, c, -1))
        return flat.reshape(n, c, h, w)


@catalogue.correct
class UndoableMaxPool2d(nn.MaxPool2d):
    """nn.MaxUnpool2d with the remembered size"""

    def forward(self, x):
        self.size = x.size()
        out, self.indices = F.max_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.dilation, return_indices=True
        )
        return out

    def undo(self, y):
        return nn.MaxUnpool2d(self.kernel_size, self.stride, self.padding)(
            y, self.indices, output_size=self.size
        )


@catalogue.correct
class UndoableMaxPool2d(nn.MaxPool2d):
    """the gradient of the pooling (equal to unpooling when windows do not overlap)"""

    def forward(self, x):
        self.saved = x.detach()
        return super().forward(x)

    def undo(self, y):
        with torch.enable_grad():
            leaf = self.saved.clone().requires_grad_(True)
            pooled = F.max_pool2d(leaf, self.kernel_size, self.stride, self.padding, self.dilation)
            return torch.autograd.grad(pooled, leaf, y)[0]


@catalogue.correct
class UndoableMaxPool2d(nn.MaxPool2d):
    """windows from F.unfold, the maxima's positions worked out by hand, undo by index assignment"""

    @staticmethod
    def pair(value):
        return (value, value) if isinstance(value, int) else tuple(value)

    def forward(self, x):
        n, c, h, w = x.shape
        settings = (self.kernel_size, self.stride, self.padding, self.dilation)
        (k_h, k_w), (s_h, s_w), (p_h, p_w), (d_h, d_w) = (self.pair(v) for v in settings)
        padded = F.pad(x, (p_w, p_w, p_h, p_h), value=float("-inf"))
        padded = padded.reshape(n * c, 1, h + 2 * p_h, w + 2 * p_w)
        windows = F.unfold(padded, (k_h, k_w), dilation=(d_h, d_w), stride=(s_h, s_w))
        values, best = windows.max(dim=1)  # over the taps of each window
        out_h = (h + 2 * p_h - d_h * (k_h - 1) - 1) // s_h + 1
        out_w = (w + 2 * p_w - d_w * (k_w - 1) - 1) // s_w + 1
        window = torch.arange(out_h * out_w)
        rows = (window // out_w) * s_h - p_h + (best // k_w) * d_h
        cols = (window % out_w) * s_w - p_w + (best % k_w) * d_w
        self.positions, self.input_shape = rows * w + cols, x.shape
        return values.reshape(n, c, out_h, out_w)

    def undo(self, y):
        n, c, h, w = self.input_shape
        flat = y.new_zeros(n * c, h * w)
        flat[torch.arange(n * c)[:, None], self.positions] = y.reshape(n * c, -1)
        return flat.reshape(n, c, h, w)


@catalogue.wrong("test_UndoableMaxPool2d", "unpools without output_size (odd sizes lose a row)")
class UndoableMaxPool2d(nn.MaxPool2d):
    def forward(self, x):
        out, self.switches = F.max_pool2d(x, self.kernel_size, self.stride, return_indices=True)
        return out

    def undo(self, y):
        return F.max_unpool2d(y, self.switches, self.kernel_size, self.stride)


@catalogue.wrong("test_UndoableMaxPool2d", "nearest upsampling instead of switches")
class UndoableMaxPool2d(nn.MaxPool2d):
    def forward(self, x):
        self.size = x.shape[-2:]
        return super().forward(x)

    def undo(self, y):
        k = self.kernel_size
        big = y.repeat_interleave(k, dim=-2).repeat_interleave(k, dim=-1)
        h, w = self.size
        return F.pad(big, (0, w - big.shape[-1], 0, h - big.shape[-2]))


@catalogue.wrong("test_UndoableMaxPool2d", "puts every value in the top-left corner of its window")
class UndoableMaxPool2d(nn.MaxPool2d):
    def forward(self, x):
        self.size = x.shape[-2:]
        return super().forward(x)

    def undo(self, y):
        k = self.kernel_size
        n, c, oh, ow = y.shape
        out = y.new_zeros(n, c, *self.size)
        out[:, :, : oh * k : k, : ow * k : k] = y
        return out


@catalogue.wrong("test_UndoableMaxPool2d", "forward returns (values, indices)")
class UndoableMaxPool2d(nn.MaxPool2d):
    def forward(self, x):
        self.size = x.shape[-2:]
        self.switches = F.max_pool2d(x, self.kernel_size, self.stride, return_indices=True)[1]
        return F.max_pool2d(x, self.kernel_size, self.stride, return_indices=True)

    def undo(self, y):
        return F.max_unpool2d(y, self.switches, self.kernel_size, self.stride, output_size=self.size)


@catalogue.wrong("test_UndoableMaxPool2d", "keeps the switches of the first forward call only")
class UndoableMaxPool2d(nn.MaxPool2d):
    def forward(self, x):
        out, switches = F.max_pool2d(x, self.kernel_size, self.stride, return_indices=True)
        if not hasattr(self, "switches"):
            self.switches, self.size = switches, x.shape[-2:]
        return out

    def undo(self, y):
        return F.max_unpool2d(y, self.switches, self.kernel_size, self.stride, output_size=self.size)


# --- UndoableConv2d ---------------------------------------------------------------------------


@catalogue.correct
class UndoableConv2d(nn.Conv2d):
    """torch's F.conv_transpose2d with output_padding from the remembered size"""

    def forward(self, x):
        self.h, self.w = x.shape[-2:]
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def undo(self, y):
        natural_h = (y.shape[-2] - 1) * self.stride[0] - 2 * self.padding[0] + self.kernel_size[0]
        natural_w = (y.shape[-1] - 1) * self.stride[1] - 2 * self.padding[1] + self.kernel_size[1]
        extra = (self.h - natural_h, self.w - natural_w)
        return F.conv_transpose2d(
            y, self.weight, stride=self.stride, padding=self.padding, output_padding=extra
        )


@catalogue.correct
class UndoableConv2d(nn.Conv2d):
    """the input gradient of the convolution without bias, from autograd"""

    def forward(self, x):
        self.input_shape = x.shape
        return super().forward(x)

    def undo(self, y):
        with torch.enable_grad():
            leaf = torch.zeros(y.shape[0], *self.input_shape[1:], requires_grad=True)
            out = F.conv2d(leaf, self.weight.detach(), None, self.stride, self.padding)
            return torch.autograd.grad(out, leaf, y)[0]


@catalogue.correct
class UndoableConv2d(nn.Conv2d):
    """forward by F.conv2d, undo by the transposed matrix of the convolution (conv2d_matrix)"""

    def forward(self, x):
        self.input_size = tuple(x.shape[-2:])
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def undo(self, y):
        h, w = self.input_size
        matrix = conv2d_matrix(self.weight, (h, w), self.stride[0], self.padding[0])  # noqa: F821
        return (y.reshape(len(y), -1) @ matrix).reshape(len(y), self.in_channels, h, w)


@catalogue.wrong("test_UndoableConv2d", "no output_padding (27 pixels back instead of 28)")
class UndoableConv2d(nn.Conv2d):
    def undo(self, y):
        return F.conv_transpose2d(y, self.weight, stride=self.stride, padding=self.padding)


@catalogue.wrong("test_UndoableConv2d", "subtracts the bias before going back")
class UndoableConv2d(nn.Conv2d):
    def forward(self, x):
        self.size = x.shape[-2:]
        return super().forward(x)

    def undo(self, y):
        pad = tuple(
            (n + 2 * p - k) % s
            for n, p, k, s in zip(self.size, self.padding, self.kernel_size, self.stride, strict=True)
        )
        y = y - self.bias[None, :, None, None]
        return F.conv_transpose2d(
            y, self.weight, stride=self.stride, padding=self.padding, output_padding=pad
        )


@catalogue.wrong("test_UndoableConv2d", "a fresh nn.ConvTranspose2d with its own random weights")
class UndoableConv2d(nn.Conv2d):
    def forward(self, x):
        self.size = x.shape[-2:]
        return super().forward(x)

    def undo(self, y):
        back = nn.ConvTranspose2d(
            self.out_channels, self.in_channels, self.kernel_size, self.stride, self.padding, bias=False
        )
        return back(y, output_size=self.size)


@catalogue.wrong("test_UndoableConv2d", "copies the weight once, at construction")
class UndoableConv2d(nn.Conv2d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.frozen = self.weight.detach().clone()

    def forward(self, x):
        self.size = x.shape[-2:]
        return super().forward(x)

    def undo(self, y):
        pad = tuple(
            (n + 2 * p - k) % s
            for n, p, k, s in zip(self.size, self.padding, self.kernel_size, self.stride, strict=True)
        )
        return F.conv_transpose2d(
            y, self.frozen, stride=self.stride, padding=self.padding, output_padding=pad
        )


@catalogue.wrong("test_UndoableConv2d", "flips the kernel on the way back")
class UndoableConv2d(nn.Conv2d):
    def forward(self, x):
        self.size = x.shape[-2:]
        return super().forward(x)

    def undo(self, y):
        pad = tuple(
            (n + 2 * p - k) % s
            for n, p, k, s in zip(self.size, self.padding, self.kernel_size, self.stride, strict=True)
        )
        flipped = self.weight.flip(-1, -2)
        return F.conv_transpose2d(y, flipped, stride=self.stride, padding=self.padding, output_padding=pad)


@catalogue.wrong("test_UndoableConv2d", "a same-size convolution with the channel-swapped weight")
class UndoableConv2d(nn.Conv2d):
    def undo(self, y):
        weight = self.weight.transpose(0, 1).flip(-1, -2)
        return F.conv2d(y, weight, padding=self.kernel_size[0] // 2)


# --- UndoableSequential -----------------------------------------------------------------------


@catalogue.correct
class UndoableSequential(nn.Sequential):
    """functools.reduce over the reversed layers"""

    def undo(self, y):
        import functools

        return functools.reduce(lambda signal, layer: layer.undo(signal), reversed(list(self)), y)


@catalogue.correct
class UndoableSequential(nn.Sequential):
    """index loop from the last layer down"""

    def undo(self, y):
        for index in range(len(self) - 1, -1, -1):
            y = self[index].undo(y)
        return y


@catalogue.correct
class UndoableSequential(nn.Sequential):
    """recursion: the first layer undoes what the rest of the sequence (a slice) gives back"""

    def undo(self, y):
        if len(self) == 0:
            return y
        return self[0].undo(self[1:].undo(y))


@catalogue.wrong("test_UndoableSequential", "undoes the layers in forward order")
class UndoableSequential(nn.Sequential):
    def undo(self, y):
        for layer in self:
            y = layer.undo(y)
        return y


@catalogue.wrong("test_UndoableSequential", "undoes only the last layer")
class UndoableSequential(nn.Sequential):
    def undo(self, y):
        return self[-1].undo(y)


@catalogue.wrong("test_UndoableSequential", "runs the layers forward on the signal")
class UndoableSequential(nn.Sequential):
    def undo(self, y):
        for layer in reversed(self):
            y = layer(y)
        return y


@catalogue.wrong("test_UndoableSequential", "returns the signal unchanged")
class UndoableSequential(nn.Sequential):
    def undo(self, y):
        return y


# --- overlap_counts ---------------------------------------------------------------------------


@catalogue.correct
def overlap_counts(kernel_size, stride, size):
    """a transposed convolution of ones with a kernel of ones, as integers"""
    ones = torch.ones(1, 1, size, size, dtype=torch.float64)
    kernel = torch.ones(1, 1, kernel_size, kernel_size, dtype=torch.float64)
    return F.conv_transpose2d(ones, kernel, stride=stride)[0, 0].round().long()


@catalogue.correct
def overlap_counts(kernel_size, stride, size):
    """counts both axes with the inequality, then an outer product"""
    m = (size - 1) * stride + kernel_size
    axis = torch.tensor([sum(0 <= i - h * stride < kernel_size for h in range(size)) for i in range(m)])
    return torch.outer(axis, axis)


@catalogue.correct
def overlap_counts(kernel_size, stride, size):
    """stamps every placement on a 2-D canvas (int32)"""
    m = (size - 1) * stride + kernel_size
    canvas = torch.zeros(m, m, dtype=torch.int32)
    for h in range(size):
        for v in range(size):
            canvas[h * stride : h * stride + kernel_size, v * stride : v * stride + kernel_size] += 1
    return canvas


@catalogue.correct
def overlap_counts(kernel_size, stride, size):
    """F.fold of all-ones stamps, rounded to integers"""
    m = (size - 1) * stride + kernel_size
    stamps = torch.ones(1, kernel_size * kernel_size, size * size)
    return F.fold(stamps, (m, m), kernel_size, stride=stride)[0, 0].round().long()


@catalogue.wrong("test_overlap_counts", "returns floats (transposed convolution without .long())")
def overlap_counts(kernel_size, stride, size):
    ones = torch.ones(1, 1, size, size)
    return F.conv_transpose2d(ones, torch.ones(1, 1, kernel_size, kernel_size), stride=stride)[0, 0]


@catalogue.wrong("test_overlap_counts", "adds the two axes' counts instead of multiplying")
def overlap_counts(kernel_size, stride, size):
    m = (size - 1) * stride + kernel_size
    axis = torch.zeros(m, dtype=torch.int64)
    for h in range(size):
        axis[h * stride : h * stride + kernel_size] += 1
    return axis[:, None] + axis[None, :]


@catalogue.wrong("test_overlap_counts", "a kernel one pixel too short")
def overlap_counts(kernel_size, stride, size):
    m = (size - 1) * stride + kernel_size
    axis = torch.zeros(m, dtype=torch.int64)
    for h in range(size):
        axis[h * stride : h * stride + kernel_size - 1] += 1
    return torch.outer(axis, axis)


@catalogue.wrong("test_overlap_counts", "the convolution's output size instead of the transposed one")
def overlap_counts(kernel_size, stride, size):
    m = (size - kernel_size) // stride + 1
    return torch.full((m, m), (kernel_size // stride) ** 2, dtype=torch.int64)


@catalogue.wrong("test_overlap_counts", "marks covered pixels (0/1) instead of counting")
def overlap_counts(kernel_size, stride, size):
    m = (size - 1) * stride + kernel_size
    canvas = torch.zeros(m, m, dtype=torch.int64)
    for h in range(size):
        for v in range(size):
            canvas[h * stride : h * stride + kernel_size, v * stride : v * stride + kernel_size] = 1
    return canvas
