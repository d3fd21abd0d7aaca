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


def montage(rows: Sequence[torch.Tensor], pad: int = 2) -> np.ndarray:
    """Rows of (N, C, H, W) images in [0, 1] tiled into one RGB array, with white gaps between them."""
    height, width = rows[0].shape[-2:]
    n_cols = max(len(r) for r in rows)
    canvas = np.ones((len(rows) * (height + pad) - pad, n_cols * (width + pad) - pad, 3))
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            tile = to_numpy_image(image)
            top, left = i * (height + pad), j * (width + pad)
            canvas[top : top + height, left : left + width] = tile[..., None] if tile.ndim == 2 else tile
    return canvas


def image_grid(
    rows: Sequence[torch.Tensor],
    row_titles: Sequence[str] | None = None,
    col_titles: Sequence[str] | None = None,
    scale: float = 1.2,
    title: str | None = None,
):
    """Show rows of images (each a (N, C, H, W) tensor in [0, 1]) as a grid; returns the figure.

    The grid is one picture on one set of axes: a figure with an axes per image takes about ten
    times as long to draw, which every notebook run (and every graded submission) would pay.
    """
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    height, width = rows[0].shape[-2:]
    pad = max(1, width // 14)
    fig, ax = plt.subplots(figsize=(scale * n_cols, scale * n_rows))
    ax.imshow(montage(rows, pad), interpolation="nearest")
    ax.set_frame_on(False)
    ax.set_xticks([j * (width + pad) + width / 2 for j in range(len(col_titles))] if col_titles else [])
    ax.set_xticklabels(col_titles or [], fontsize=9)
    ax.xaxis.tick_top()
    ax.set_yticks([i * (height + pad) + height / 2 for i in range(n_rows)] if row_titles else [])
    ax.set_yticklabels(row_titles or [])
    ax.tick_params(length=0)
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
