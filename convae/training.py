"""A small, explicit training loop shared by the notebooks.

It does the bookkeeping students should not have to rewrite in every notebook (seeding, device,
progress bar, loss history) and nothing model-specific: the loss is a function the notebook
passes in.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

import numpy as np
import torch
from tqdm.auto import tqdm

from convae import grading_mode


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; returns a torch generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA when present (and not in grading mode, which must be reproducible), else CPU."""
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available() and not grading_mode():
        return torch.device("cuda")
    return torch.device("cpu")


def train(
    model: torch.nn.Module,
    batches: Callable[[], Iterable],
    loss_fn: Callable[[torch.nn.Module, object], torch.Tensor],
    *,
    epochs: int = 1,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    device: torch.device | None = None,
    max_steps: int | None = None,
    desc: str = "training",
) -> list[float]:
    """Train ``model`` and return the loss of every step.

    ``batches()`` yields one epoch of batches; ``loss_fn(model, batch)`` returns a scalar loss
    (the batch is moved to ``device`` first when it is a tensor or a tuple of tensors).
    ``max_steps`` caps the total number of steps, which is how notebooks keep grading short.
    """
    device = device or pick_device()
    model.to(device).train()
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    history: list[float] = []
    with tqdm(total=max_steps, desc=desc, unit="step", mininterval=0.5) as bar:
        for epoch in range(epochs):
            bar.set_description(f"{desc} (epoch {epoch + 1}/{epochs})")
            for batch in batches():
                loss = loss_fn(model, to_device(batch, device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                history.append(float(loss.detach()))
                bar.update(1)
                bar.set_postfix(loss=f"{history[-1]:.4g}")
                if max_steps is not None and len(history) >= max_steps:
                    return history
    return history


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: Iterable, loss_fn, device: torch.device | None = None) -> float:
    """Mean of ``loss_fn`` over ``batches``, weighted by batch size."""
    device = device or pick_device()
    model.to(device).eval()
    total, count = 0.0, 0
    for batch in batches:
        batch = to_device(batch, device)
        size = len(batch[0] if isinstance(batch, (tuple, list)) else batch)
        total += float(loss_fn(model, batch)) * size
        count += size
    model.train()
    return total / max(count, 1)


def to_device(batch, device: torch.device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(item, device) for item in batch)
    return batch
