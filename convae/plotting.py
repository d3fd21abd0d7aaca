"""Plot helpers: image grids and loss curves."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def to_numpy_image(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) tensor in [0, 1] -> (H, W) or (H, W, C) array for imshow."""
    image = image.detach().cpu().float().clamp(0, 1)
    if image.ndim == 3 and image.shape[0] == 1:
        return image[0].numpy()
    if image.ndim == 3:
        return image.permute(1, 2, 0).numpy()
    return image.numpy()


def image_grid(
    rows: Sequence[torch.Tensor],
    row_titles: Sequence[str] | None = None,
    col_titles: Sequence[str] | None = None,
    scale: float = 1.2,
    title: str | None = None,
):
    """Show rows of images (each a (N, C, H, W) tensor in [0, 1]) as a grid; returns the figure."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(scale * n_cols, scale * n_rows), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(row):
                ax.imshow(to_numpy_image(row[j]), cmap="gray", vmin=0, vmax=1)
            else:
                ax.axis("off")
            if j == 0 and row_titles:
                ax.set_ylabel(row_titles[i], rotation=0, ha="right", va="center")
            if i == 0 and col_titles and j < len(col_titles):
                ax.set_title(col_titles[j], fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def loss_curves(histories: dict[str, Sequence[float]], smooth: int = 20, log: bool = False, ax=None):
    """Plot one loss curve per entry, smoothed by a moving average; returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for label, values in histories.items():
        values = np.asarray(values, dtype=float)
        window = max(1, min(smooth, len(values)))
        smoothed = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window - 1, len(values)), smoothed, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if log:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return ax
