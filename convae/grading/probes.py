"""Probes: public helpers that run where the student's objects live.

Some facts exist only inside the process that runs the student's code: whether a result is still
attached to the autograd graph, which torch functions a call used, where gradients went. The
judge asks for them by name (``checks`` does it for test cells); in a student's own kernel the
same functions run locally. What a probe reports from the student's process is that process's
claim: these checks are best-effort, and the README says so.

Also here: small differentiable functions that tests hand to student code when gradients must
flow through them, which a function living in the judge could not do.

Nothing here is secret and nothing here is a solution: the hidden tests decide what to make of
the facts.
"""

from __future__ import annotations

__all__ = [
    "autograd",
    "parameter_gradients",
    "torch_function_calls",
    "modified_arguments",
    "manual_seed",
    "rng_state",
    "squared_error_sum",
    "abs_sum",
    "cube_sum_third",
    "constant_loss",
    "identity",
]


def _select(result, output):
    return result if output is None else result[output]


def autograd(fn, args, kwargs, wrt, output=None, grad_output=None):
    """Call ``fn(*args, **kwargs)`` with ``args[i]`` (i in ``wrt``) as fresh leaves.

    Returns ``(result, requires_grad, grads)``: the result, whether the selected output (the
    result itself, or ``result[output]``) is attached to the graph, and the gradient of
    ``sum(output * grad_output)`` (``grad_output`` defaults to ones) with respect to each
    ``args[i]``, or None where it does not depend on it.
    """
    import torch

    args = list(args)
    leaves = []
    for i in wrt:
        args[i] = torch.Tensor.as_subclass(args[i], torch.Tensor).detach().clone().requires_grad_(True)
        leaves.append(args[i])
    result = fn(*args, **(kwargs or {}))
    out = _select(result, output)
    attached = isinstance(out, torch.Tensor) and out.requires_grad
    if not attached:
        return result, False, [None] * len(leaves)
    weights = torch.ones_like(out) if grad_output is None else grad_output
    grads = torch.autograd.grad((out * weights).sum(), leaves, allow_unused=True)
    return result, True, [None if g is None else g.detach() for g in grads]


def parameter_gradients(module, args, kwargs, method=None, output=None, grad_output=None):
    """The gradient reaching each named parameter of ``module`` from one call.

    Calls ``module(*args)`` (or ``module.<method>(*args)``), back-propagates
    ``sum(output * grad_output)`` and returns ``{name: gradient or None}``; the parameters'
    ``.grad`` are left as they were.
    """
    import torch

    params = dict(module.named_parameters())
    saved = {name: p.grad for name, p in params.items()}
    for p in params.values():
        p.grad = None
    try:
        call = module if method is None else getattr(module, method)
        out = _select(call(*args, **(kwargs or {})), output)
        if isinstance(out, torch.Tensor) and out.requires_grad:
            weights = torch.ones_like(out) if grad_output is None else grad_output
            (out * weights).sum().backward()
        return {name: None if p.grad is None else p.grad.detach().clone() for name, p in params.items()}
    finally:
        for name, p in params.items():
            p.grad = saved[name]


def torch_function_calls(fn, args, kwargs):
    """``(result, calls)``: the distinct torch functions ``fn(*args, **kwargs)`` went through.

    Each call is ``(name, owner, makes_grad, transposed)``: the function's name, the name of the
    object it is bound to (``grad`` for reading ``.grad``), whether it asks for a tensor that
    requires grad, and whether it is a convolution with ``transposed=True``.
    """
    from torch.overrides import TorchFunctionMode

    calls = set()

    class Recorder(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            calls.add(_describe_call(func, args, kwargs))
            return func(*args, **kwargs)

    with Recorder():
        result = fn(*args, **(kwargs or {}))
    return result, sorted(calls, key=lambda c: (c[0], str(c[1]), c[2], c[3]))


def _describe_call(func, args, kwargs):
    name = getattr(func, "__name__", "") or ""
    owner = getattr(getattr(func, "__self__", None), "__name__", None)
    makes_grad = bool(kwargs.get("requires_grad")) or (
        name == "__set__" and owner == "requires_grad" and bool(args and args[-1])
    )
    if name == "requires_grad_":
        makes_grad = bool(len(args) < 2 or args[1]) and bool(kwargs.get("requires_grad", True))
    transposed = False
    if name.split(".")[0] in ("convolution", "_convolution"):
        transposed = bool(kwargs.get("transposed", args[6] if len(args) > 6 else False))
    return (name, owner if isinstance(owner, str) else None, makes_grad, transposed)


def modified_arguments(fn, args, kwargs):
    """``(result, modified)``: the positions and keywords of tensor arguments ``fn`` changed in place."""
    import torch

    def plain(tensor):
        return torch.Tensor.as_subclass(tensor, torch.Tensor).detach()

    given = {**dict(enumerate(args)), **(kwargs or {})}
    before = {key: plain(value).clone() for key, value in given.items() if isinstance(value, torch.Tensor)}
    result = fn(*args, **(kwargs or {}))
    modified = [
        key
        for key, saved in before.items()
        if plain(given[key]).shape != saved.shape or not torch.equal(plain(given[key]), saved)
    ]
    return result, modified


def manual_seed(seed):
    """Seed the global torch generator of this process."""
    import torch

    torch.manual_seed(seed)


def rng_state():
    """The state of this process's global torch generator (a uint8 tensor)."""
    import torch

    return torch.get_rng_state()


# --- differentiable functions tests hand to student code ---------------------------------------


def squared_error_sum(output, target):
    return ((output - target) ** 2).sum()


def abs_sum(output):
    return output.abs().sum()


def cube_sum_third(output):
    return (output**3).sum() / 3


def constant_loss(output, target):
    """1.5, whatever the output: the loss term carries no gradient."""
    import torch

    return torch.tensor(1.5, dtype=output.dtype)


def identity(value):
    """The value itself: a decoder through which gradients flow back to what made ``value``."""
    return value
