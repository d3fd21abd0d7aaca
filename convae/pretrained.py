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


def load_weights(model: torch.nn.Module, name: str) -> torch.nn.Module:
    """Load ``assets/<name>.pt`` into ``model`` (strict: the architecture must match)."""
    path = weights_path(name)
    if not path.exists():
        raise FileNotFoundError(f"no shipped weights {path.name}: run the tools/ script that trains it")
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(
            f"the shipped weights {path.name} do not fit this model: check that its layers match the "
            f"architecture the notebook describes ({error})"
        ) from None
    return model.eval()
