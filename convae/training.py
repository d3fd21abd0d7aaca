"""A small, explicit training loop shared by the notebooks.

It does the bookkeeping students should not have to rewrite in every notebook (seeding, device,
progress bar, loss history) and nothing model-specific: the loss is a function the notebook
passes in.

Devices: ``train`` and ``evaluate`` run where the model is, and move each batch there; with
``device=`` they run on that device and put the model back where it came from, so a notebook that
keeps its data on the CPU can call the model on that data afterwards, on any machine.
"""

from __future__ import annotations

import contextlib
import itertools
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
    """The device a notebook puts its models and data on: CUDA when present (and not in grading
    mode, which must be reproducible), else the CPU."""
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available() and not grading_mode():
        return torch.device("cuda")
    return torch.device("cpu")


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a model's parameters (else its buffers) live; the CPU for a model with neither."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def on_device(model: torch.nn.Module, device: torch.device | str | None):
    """The model on ``device`` (default: where it is) for the block, and back home afterwards."""
    home = model_device(model)
    device = torch.device(device) if device is not None else home
    if device == home:
        yield device
        return
    model.to(device)
    try:
        yield device
    finally:
        model.to(home)


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
    Training runs where the model is, or on ``device`` with the model moved back afterwards (an
    ``optimizer`` passed in keeps its state on that device: pass the same ``device`` every time).
    """
    history: list[float] = []
    with on_device(model, device) as device:
        model.train()
        optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
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
    """Mean of ``loss_fn`` over ``batches``, weighted by batch size; the model comes back on its
    device and in its mode (training or evaluation)."""
    was_training = model.training
    total, count = 0.0, 0
    with on_device(model, device) as device:
        model.eval()
        try:
            for batch in batches:
                batch = to_device(batch, device)
                size = len(batch[0] if isinstance(batch, (tuple, list)) else batch)
                total += float(loss_fn(model, batch)) * size
                count += size
        finally:
            model.train(was_training)
    return total / max(count, 1)


def to_device(batch, device: torch.device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(item, device) for item in batch)
    return batch
