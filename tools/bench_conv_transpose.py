"""Time the reference conv_transpose2d of ps1 against PyTorch's F.conv_transpose2d on the CPU.

The function is read from source/ps1/transposed_convolutions.ipynb and executed at run time (no
solution is copied here). The configuration is the one the notebook promises: a batch of 16
images, 32 -> 16 channels, 32x32, a 3x3 kernel, stride 2 (plus the decoder's usual padding 1,
output padding 1). Prints the median time of each and the ratio; the notebook's claim is a ratio
below 2 (the issue asks for below 3). Not a test: timings depend on the machine and its load.

    python tools/bench_conv_transpose.py              # one thread
    python tools/bench_conv_transpose.py --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing the package

from convae import notebooks  # noqa: E402

NOTEBOOK = REPO / "source" / "ps1" / "transposed_convolutions.ipynb"


def reference_conv_transpose2d():
    cells = notebooks.cells_by_id(notebooks.read(NOTEBOOK))
    namespace: dict = {"__name__": "bench"}
    for cell_id in ("imports", "conv_transpose2d"):
        exec(compile(cells[cell_id].source, f"<{NOTEBOOK.name}: {cell_id}>", "exec"), namespace)
    return namespace["conv_transpose2d"]


def median_seconds(first, second, repeats: int) -> tuple[float, float]:
    """Median times of two functions, timed alternately so that a change in load hits both alike."""
    first(), second()  # warm-up (allocator, kernel selection)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, bucket in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    by_hand = reference_conv_transpose2d()

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, 32, 32, 32, generator=generator)
    weight = torch.randn(32, 16, 3, 3, generator=generator)
    print(f"x {tuple(x.shape)}, weight {tuple(weight.shape)}, {args.threads} thread(s)", end=", ")
    print(f"median of {args.repeats} alternating runs")
    worst_ratio = 0.0
    for padding, output_padding in ((0, 0), (1, 1)):
        kwargs = dict(stride=2, padding=padding, output_padding=output_padding)
        error = (by_hand(x, weight, **kwargs) - F.conv_transpose2d(x, weight, **kwargs)).abs().max().item()
        ours, torchs = median_seconds(
            lambda kw=kwargs: by_hand(x, weight, **kw),
            lambda kw=kwargs: F.conv_transpose2d(x, weight, **kw),
            args.repeats,
        )
        worst_ratio = max(worst_ratio, ours / torchs)
        print(
            f"stride 2, padding {padding}, output_padding {output_padding}: by hand {ours * 1e3:.2f} ms, "
            f"torch {torchs * 1e3:.2f} ms, ratio {ours / torchs:.2f} (max |difference| {error:.1e})"
        )
    print(f"worst ratio {worst_ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
