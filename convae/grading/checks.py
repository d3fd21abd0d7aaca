"""Helpers for test cells: the same call works in the judge and in a student's own kernel.

In a student's kernel (self-checks, ``nbgrader validate``) a test cell's objects are real and these
helpers act on them directly. In the judge the student's objects are handles (``proxy.Handle``)
and the helpers ask the student's process instead.

Two kinds of checks, and the README's threat model names them:
- *enforced*: computed in the judge from values (``listed`` of values, ``type_name``,
  ``numerical_gradient``, ``parameter_layers``' rows and counts, ``stays_on_device``): the
  student's code can only give wrong values;
- *best-effort*: facts only the student's process can observe (``is_instance``, ``autograd``,
  ``parameter_gradients``, ``torch_function_calls``, ``modified_arguments``, ``manual_seed``,
  ``rng_state``, which of ``parameter_layers``' modules ran and their output shapes); the
  student's code could change what that process reports.

A check built on a mechanism (a hook firing, a module being called, a torch function running) must
pass every correct answer: a forward may use a layer's weights without calling the layer.

Best-effort helpers take the student's object itself (a handle), not a function of the test's
that wraps it: the probe must run where the student's object lives.
"""

from __future__ import annotations

from typing import NamedTuple

from convae.grading import probes, proxy


def _session_of(obj):
    return object.__getattribute__(obj, "_session") if isinstance(obj, proxy.Handle) else None


def _remote(obj, *others):
    """The session when ``obj`` (or any of ``others``) lives in the student's process."""
    for candidate in (obj, *others):
        session = _session_of(candidate)
        if session is not None:
            return session
    if proxy.current_session() is not None and callable(obj) and not isinstance(obj, type):
        raise TypeError(
            "pass the student's own function or object to this check, not a wrapper of the test's"
        )
    return None


def listed(obj, limit: int = proxy.LIST_LIMIT) -> list:
    """``list(obj)``: the student's values by value, their other objects as handles."""
    session = _session_of(obj)
    if session is None:
        return list(obj)
    items = session.request("list", target=obj)
    if type(items) is not list or len(items) > limit:
        raise proxy.OpaqueValueError("the student's object did not list as a sequence of items")
    return items


def type_name(obj) -> str:
    """The name of ``obj``'s type, as the student's code made it."""
    return proxy.type_name(obj) if isinstance(obj, proxy.Handle) else type(obj).__name__


def is_instance(obj, cls) -> bool:
    """``isinstance(obj, cls)``, asked in the student's process for a handle (best-effort)."""
    session = _session_of(obj)
    if session is None:
        return isinstance(obj, cls)
    answer = session.request("isinstance", target=obj, module=cls.__module__, qualname=cls.__qualname__)
    return answer is True


def probe(name: str):
    """The public probe function ``name`` (``probes``), in the process that runs the student's code.

    For tests that hand student code a function through which gradients must flow.
    """
    session = proxy.current_session()
    if session is None:
        return getattr(probes, name)
    return session.request("probe_function", name=name)


def _run_probe(name, obj, *args, **kwargs):
    session = _remote(obj)
    if session is None:
        return getattr(probes, name)(obj, *args, **kwargs)
    return session.request("probe", name=name, args=[obj, *args], kwargs=kwargs)


def autograd(fn, *args, wrt=(0,), output=None, grad_output=None, **kwargs):
    """``(result, requires_grad, grads)`` of ``fn(*args, **kwargs)`` (best-effort, see ``probes``)."""
    result, attached, grads = _run_probe(
        "autograd", fn, list(args), kwargs, list(wrt), output=output, grad_output=grad_output
    )
    return result, attached is True, list(grads)


def parameter_gradients(module, *args, method=None, output=None, grad_output=None, **kwargs) -> dict:
    """``{parameter name: gradient or None}`` from one call of ``module`` (best-effort)."""
    grads = _run_probe(
        "parameter_gradients",
        module,
        list(args),
        kwargs,
        method=method,
        output=output,
        grad_output=grad_output,
    )
    if type(grads) is not dict:
        raise proxy.OpaqueValueError("the student's process did not report parameter gradients")
    return grads


def torch_function_calls(fn, *args, **kwargs):
    """``(result, calls)``: the torch functions ``fn`` went through (best-effort, see ``probes``)."""
    result, calls = _run_probe("torch_function_calls", fn, list(args), kwargs)
    return result, [tuple(c) for c in calls]


def modified_arguments(fn, *args, **kwargs):
    """``(result, modified)``: which tensor arguments ``fn`` changed in place (best-effort)."""
    result, modified = _run_probe("modified_arguments", fn, list(args), kwargs)
    return result, list(modified)


# PyTorch's messages when tensors of two devices meet: on the meta device, and on a GPU.
DEVICE_MISMATCH = ("is not on the expected device meta", "Expected all tensors to be on the same device")


def stays_on_device(fn, *args, **kwargs) -> bool | None:
    """Whether ``fn`` computes on its tensor arguments' device, as a GPU run needs.

    The tensor arguments go to PyTorch's meta device (a dtype and a shape, no data), which stands
    in for a GPU on any machine: noise drawn by ``torch.randn(shape)`` without ``device=`` lands on
    the CPU and cannot meet them there, as on a GPU. True: ``fn`` returned a meta tensor. False: it
    failed with PyTorch's device-mismatch error, or returned a tensor of another device. None: it
    could not run on the meta device for another reason (an operation the meta device lacks, a
    value read with ``.item()``), which is no verdict: the other checks judge its values.
    """
    import torch

    meta = [a.to("meta") if isinstance(a, torch.Tensor) else a for a in args]
    try:
        out = fn(*meta, **kwargs)
    except Exception as error:  # noqa: BLE001 -- only the device mismatch is a verdict
        return False if any(text in str(error) for text in DEVICE_MISMATCH) else None
    if not isinstance(out, torch.Tensor):  # a handle is no tensor: no verdict
        return None
    return out.device.type == "meta"


def manual_seed(seed: int) -> None:
    """Seed torch here and, in the judge, in the student's process too (best-effort there)."""
    import torch

    torch.manual_seed(seed)
    session = proxy.current_session()
    if session is not None:
        session.request("probe", name="manual_seed", args=[seed], kwargs={})


def rng_state():
    """The global torch generator state of the process that runs the student's code (best-effort)."""
    session = proxy.current_session()
    return (
        probes.rng_state()
        if session is None
        else session.request("probe", name="rng_state", args=[], kwargs={})
    )


class LayerRow(NamedTuple):
    """One module that owns parameters, as ``parameter_layers`` reports it."""

    kind: str  # the layer's kind (see ``parameter_layers``)
    shape: tuple | None  # the shape of its first output; None if that was no tensor, or it never ran
    parameters: int  # the number of parameters it owns
    ran: bool  # whether the forward pass called it as a module


def _owned_counts(stage) -> dict[str, int]:
    """``{module name: parameters it owns}``, counted here from the parameters as values."""
    owned: dict[str, int] = {}
    for name, parameter in listed(stage.named_parameters(remove_duplicate=False)):
        owner = name.rpartition(".")[0]
        owned[owner] = owned.get(owner, 0) + parameter.numel()
    return owned


def _kind_of(module, kinds) -> str:
    name = type_name(module)
    if name in [cls.__name__ for cls in kinds]:
        return name
    return next((cls.__name__ for cls in kinds if is_instance(module, cls)), name)


def parameter_layers(stage, inputs, kinds=(), what: str = "the model"):
    """``([LayerRow], output)``: one row for each module of ``stage`` that owns parameters, and
    ``stage(inputs)`` (run under ``torch.no_grad``).

    Every module that owns parameters has its row, whether or not the forward pass calls it: a
    forward may compute with a layer's weights directly (``F.linear(h, head.weight, head.bias)``,
    ``h @ head.weight.T + head.bias``) instead of calling it. The modules that ran come first, in
    the order they first ran, with the shape of their first output; then the others (``ran``
    False, shape None), in the order they were registered. A module called twice has one row.

    Enforced: which modules own parameters and how many, made here from the parameters as values,
    and ``output``. Best-effort: the kinds (the type name the student's code made or, for a
    subclass of their own, the first of ``kinds`` it is an instance of), which modules ran, in
    which order and with which output shapes: the student's process reports those by calling the
    test's forward hooks. A forward pass that fails raises AssertionError, naming ``what`` and the
    input's shape.
    """
    import torch

    owned = _owned_counts(stage)
    modules = {name: module for name, module in listed(stage.named_modules()) if name in owned}
    kinds_of = {name: _kind_of(module, kinds) for name, module in modules.items()}
    first_shapes: dict[str, tuple | None] = {}  # in the order the modules first ran

    def recorder(name):
        def hook(_module, _inputs, output):
            if name not in first_shapes:
                first_shapes[name] = tuple(output.shape) if isinstance(output, torch.Tensor) else None

        return hook

    hooks = [module.register_forward_hook(recorder(name)) for name, module in modules.items()]
    try:
        with torch.no_grad():
            output = stage(inputs)
    except Exception as error:  # a crash is a failed check, explained in the student's terms
        raise AssertionError(f"{what} fails on an input of shape {tuple(inputs.shape)}: {error}") from None
    finally:
        for hook in hooks:
            hook.remove()
    ran = [LayerRow(kinds_of[name], shape, owned[name], True) for name, shape in first_shapes.items()]
    never_ran = [name for name in modules if name not in first_shapes]  # in the order of registration
    idle = [LayerRow(kinds_of[name], None, owned[name], False) for name in never_ran]
    return ran + idle, output


def align_layers(rows, table):
    """``[(row or None, table row or None)]``: ``parameter_layers``' rows matched with a table of
    ``(kind, shape, parameters)`` rows, in the table's order.

    A module that never ran takes the first free table row of its kind and parameter count; the
    modules that ran fill the other table rows in the order they ran. Rows left over on either
    side are paired with None: a layer the table does not have, or a table row no layer matches.
    """
    slots: list = [None] * len(table)
    unmatched = []
    for row in (row for row in rows if not row.ran):
        free = [
            i
            for i, (kind, _, count) in enumerate(table)
            if slots[i] is None and (kind, count) == (row.kind, row.parameters)
        ]
        if free:
            slots[free[0]] = row
        else:
            unmatched.append(row)
    ran = iter(row for row in rows if row.ran)
    slots = [slot if slot is not None else next(ran, None) for slot in slots]
    return list(zip(slots, table, strict=True)) + [(row, None) for row in [*ran, *unmatched]]


def numerical_gradient(fn, x, eps: float = 1e-6, weights=None):
    """Central differences of ``sum(fn(x) * weights)`` with respect to every entry of ``x``.

    Enforced: made in the judge from values of ``fn`` only. Use float64 and fix any randomness of
    ``fn`` (a generator seeded alike for every call), so that the differences are exact to ~eps^2.
    """
    import torch

    x = torch.Tensor.as_subclass(x, torch.Tensor).detach().clone()
    grad = torch.zeros_like(x)
    flat, flat_grad = x.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        saved = float(flat[i])
        flat[i] = saved + eps
        up = fn(x.clone())
        flat[i] = saved - eps
        down = fn(x.clone())
        flat[i] = saved
        difference = up - down if weights is None else (up - down) * weights
        flat_grad[i] = float(torch.Tensor.as_subclass(difference, torch.Tensor).sum()) / (2 * eps)
    return grad
