"""Trained weights shipped with the package, so that notebooks show real figures in seconds.

Each file ``convae/assets/<name>.pt`` is a plain ``state_dict`` written by a script in
``tools/`` that reproduces it; the model class it fits is the one the notebook defines.
"""

from __future__ import annotations

from pathlib import Path

import torch

ASSETS = Path(__file__).with_name("assets")


def weights_path(name: str) -> Path:
    return ASSETS / f"{name}.pt"


def save_weights(model: torch.nn.Module, name: str) -> Path:
    """Write ``model``'s parameters (float32, CPU) as ``assets/<name>.pt``."""
    path = weights_path(name)
    state = {key: value.detach().cpu().float().clone() for key, value in model.state_dict().items()}
    torch.save(state, path)
    return path


def load_weights(model: torch.nn.Module, name: str, path: Path | str | None = None) -> torch.nn.Module:
    """Load the weights ``assets/<name>.pt`` (or the file ``path``) into ``model``, in eval mode.

    See ``load_state``: any model with the published layer shapes takes them, whatever it names
    its layers.
    """
    path = Path(path) if path is not None else weights_path(name)
    if not path.exists():
        raise FileNotFoundError(f"no weights {path}: run the tools/ script that trains them")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return load_state(model, state, path.name).eval()


def load_state(model: torch.nn.Module, state: dict, source: str = "the weights") -> torch.nn.Module:
    """Put the tensors of ``state`` into ``model``.

    By name when the model's tensors have the names the weights were saved with; otherwise in
    order, the i-th tensor of the weights into the i-th of the model (the order in which its
    layers were created, as in a published layer table). Either way every shape must match, and
    the error names the first layer that does not.
    """
    ours = model.state_dict()
    if set(ours) == set(state):
        pairs = [(key, key) for key in ours]
    else:
        pairs = list(zip(ours, state, strict=False))
        if len(ours) != len(state):
            extra = list(ours)[len(pairs) :] or list(state)[len(pairs) :]
            _check_shapes(ours, state, pairs, source)  # a mismatch before the end is the better clue
            whose = "your model" if len(ours) > len(state) else source
            raise ValueError(
                f"{source} has {len(state)} tensors and your model {len(ours)}: the first without a partner "
                f"is {extra[0]!r} of {whose}"
            )
    _check_shapes(ours, state, pairs, source)
    model.load_state_dict({mine: state[theirs] for mine, theirs in pairs})
    return model


def _check_shapes(ours: dict, state: dict, pairs: list[tuple[str, str]], source: str) -> None:
    for mine, theirs in pairs:
        if tuple(ours[mine].shape) != tuple(state[theirs].shape):
            layer = mine.rpartition(".")[0] or mine
            raise ValueError(
                f"{source} does not fit your model at layer {layer!r}: {mine} has shape "
                f"{tuple(ours[mine].shape)}, the weights' {theirs} has {tuple(state[theirs].shape)}"
            )
