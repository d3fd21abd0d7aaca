"""A Keras-like layer table for any ``torch.nn.Module``: layer, output shape, parameters.

PyTorch modules do not know their output shapes until they run, so :func:`layer_table` runs the
model once on an example input with a forward hook on every *leaf* module (a module without
children: ``Conv2d``, ``ReLU``, ``Linear``, ...) and records, in the order the layers run, what
each one returned and how many parameters it owns. :func:`summary` prints the table::

    >>> from convae.summary import summary
    >>> summary(model, torch.zeros(1, 3, 32, 32))          # doctest: +SKIP
    Layer (type)                  Output shape           Param #
    ============================================================
    encoder.0 (Conv2d)            [N, 32, 16, 16]            896
    ...

The batch dimension is shown as ``N``. A layer that runs twice appears twice, its parameters
counted at the first call only. A layer that owns parameters but never runs as a module (a forward
that computes with its weights, ``F.linear(h, layer.weight, layer.bias)``) gets a row after the
others, without an output shape; parameters that belong to no leaf module (an ``nn.Parameter``
set directly on a container) are listed on a last row, so the rows always add up to the total.
Nothing here is specific to an exercise: it only reports what a model does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["LayerRow", "Summary", "layer_table", "summary"]


@dataclass(frozen=True)
class LayerRow:
    """One call of one leaf module."""

    name: str  # qualified name in the model, e.g. "encoder.features.0"
    kind: str  # the module's class name, e.g. "Conv2d"
    output_shape: tuple  # a shape tuple (batch first), or a tuple of them for several outputs
    params: int  # parameters counted on this row (0 on a repeated call)
    trainable: int  # of which require grad


@dataclass(frozen=True, repr=False)
class Summary:
    """The rows of a layer table and the model's parameter totals."""

    rows: tuple[LayerRow, ...]
    total_params: int
    trainable_params: int

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def __str__(self) -> str:
        return format_table(self)

    def __repr__(self) -> str:
        return f"Summary({len(self.rows)} rows, {self.total_params:,} parameters)"


def _shapes(output):
    """Shape tuple(s) of a module's output: a tensor, or a (nested) tuple/list of them."""
    if isinstance(output, torch.Tensor):
        return tuple(int(size) for size in output.shape)
    if isinstance(output, (tuple, list)):
        return tuple(_shapes(item) for item in output)
    if isinstance(output, dict):
        return tuple(_shapes(item) for item in output.values())
    return ()


def _leaf_modules(model: nn.Module):
    return [(name, module) for name, module in model.named_modules() if not list(module.children())]


def layer_table(model: nn.Module, example_input) -> Summary:
    """Run ``model`` once on ``example_input`` and record every leaf module's output.

    ``example_input`` is a tensor, or a tuple of positional arguments. The model runs without
    gradients and in its current train/eval mode; the hooks are removed afterwards, whatever
    happens.
    """
    rows: list[LayerRow] = []
    counted: set[int] = set()  # ids of parameters already counted on a row

    def own_parameters(module):
        fresh = [p for p in module.parameters(recurse=False) if id(p) not in counted]
        counted.update(id(p) for p in fresh)
        return fresh

    def hook_for(name):
        def hook(module, inputs, output):
            fresh = own_parameters(module)
            rows.append(
                LayerRow(
                    name=name or type(module).__name__,
                    kind=type(module).__name__,
                    output_shape=_shapes(output),
                    params=sum(int(p.numel()) for p in fresh),
                    trainable=sum(int(p.numel()) for p in fresh if p.requires_grad),
                )
            )

        return hook

    handles = [module.register_forward_hook(hook_for(name)) for name, module in _leaf_modules(model)]
    try:
        with torch.no_grad():
            if isinstance(example_input, tuple):
                model(*example_input)
            else:
                model(example_input)
    finally:
        for handle in handles:
            handle.remove()

    rows += _rows_never_called(model, own_parameters)
    unique = {id(p): p for p in model.parameters()}
    rest = [p for key, p in unique.items() if key not in counted]
    if rest:
        rows.append(
            LayerRow(
                name="(other parameters)",
                kind="Parameter",
                output_shape=(),
                params=sum(int(p.numel()) for p in rest),
                trainable=sum(int(p.numel()) for p in rest if p.requires_grad),
            )
        )
    total = sum(int(p.numel()) for p in unique.values())
    trainable = sum(int(p.numel()) for p in unique.values() if p.requires_grad)
    return Summary(tuple(rows), total, trainable)


def _rows_never_called(model: nn.Module, own_parameters) -> list[LayerRow]:
    """Rows without an output shape for the leaf modules whose parameters no row has counted."""
    rows = []
    for name, module in _leaf_modules(model):
        fresh = own_parameters(module)
        if fresh:
            rows.append(
                LayerRow(
                    name=name or type(module).__name__,
                    kind=type(module).__name__,
                    output_shape=(),
                    params=sum(int(p.numel()) for p in fresh),
                    trainable=sum(int(p.numel()) for p in fresh if p.requires_grad),
                )
            )
    return rows


def format_shape(shape, batch: bool = True) -> str:
    """``(8, 32, 16, 16)`` -> ``"[N, 32, 16, 16]"``; several outputs are joined by commas."""
    if not shape:
        return "-"
    if isinstance(shape[0], tuple):
        return ", ".join(format_shape(item, batch) for item in shape)
    sizes = ["N", *map(str, shape[1:])] if batch and len(shape) > 0 else list(map(str, shape))
    return "[" + ", ".join(sizes) + "]"


def format_table(table: Summary, batch: bool = True) -> str:
    """The Keras-style text of a :class:`Summary`."""
    header = ("Layer (type)", "Output shape", "Param #")
    body = [
        (f"{row.name} ({row.kind})", format_shape(row.output_shape, batch), f"{row.params:,}")
        for row in table.rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(3)]
    width = widths[0] + widths[1] + widths[2] + 6

    def line(cells):
        return f"{cells[0]:<{widths[0]}}   {cells[1]:<{widths[1]}}   {cells[2]:>{widths[2]}}"

    out = [line(header), "=" * width]
    out += [line(cells) for cells in body]
    out += [
        "=" * width,
        f"Total params: {table.total_params:,}",
        f"Trainable params: {table.trainable_params:,}",
        f"Non-trainable params: {table.non_trainable_params:,}",
    ]
    return "\n".join(out)


def summary(model: nn.Module, example_input, batch: bool = True, print_fn=print) -> Summary:
    """Print the layer table of ``model`` run on ``example_input``; return it as a :class:`Summary`.

    ``batch=True`` shows the first dimension of every output as ``N``. Pass ``print_fn=None``
    to get the table without printing it (``str(result)`` is the text).
    """
    table = layer_table(model, example_input)
    if print_fn is not None:
        print_fn(format_table(table, batch))
    return table
