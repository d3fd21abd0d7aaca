"""Rebuild convae/assets/fashion_mnist_subset.npz from the full Fashion-MNIST.

The subset is stratified: 500 training and 100 test images per class, drawn with a fixed seed
from the official files (by default those of the Debian package dataset-fashion-mnist, which are
checked against the known SHA-256 of their content). Rows keep their original order, and
``<split>_indices`` records each row's index in the official file.

The npz is written byte for byte the same on every run (fixed member order, timestamps and
attributes), so its SHA-256 can be pinned in convae/data.py. ``--check`` rebuilds it in memory
and compares with the committed file.

    python tools/make_fashion_subset.py            # write the file, print its SHA-256
    python tools/make_fashion_subset.py --check    # exit 1 if the committed file differs
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing the package

from convae.data import DEBIAN_FASHION_DIR, FASHION_SUBSET_PATH, read_idx_pair  # noqa: E402

SEED = 20240901
PER_CLASS = {"train": 500, "test": 100}
FILE_PREFIX = {"train": "train", "test": "t10k"}
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can store: no build time leaks in


def stratified_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """``per_class`` random row indices of each class, in ascending order."""
    chosen = [
        rng.choice(np.flatnonzero(labels == label), size=per_class, replace=False) for label in range(10)
    ]
    return np.sort(np.concatenate(chosen)).astype(np.int32)


def subset_arrays(source: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    arrays = {}
    for split, per_class in PER_CLASS.items():
        prefix = FILE_PREFIX[split]
        images, labels = read_idx_pair(
            source / f"{prefix}-images-idx3-ubyte.gz",
            source / f"{prefix}-labels-idx1-ubyte.gz",
            verify_content=True,
        )
        rows = stratified_indices(labels, per_class, rng)
        arrays[f"{split}_images"] = images[rows]
        arrays[f"{split}_labels"] = labels[rows]
        arrays[f"{split}_indices"] = rows
    return arrays


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed npz whose bytes depend only on the arrays (and zlib's output)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, whatever machine builds it
            info.external_attr = 0o644 << 16
            archive.writestr(info, npy.getvalue(), compresslevel=9)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        type=Path,
        default=DEBIAN_FASHION_DIR,
        help="directory holding the four Fashion-MNIST .gz files",
    )
    parser.add_argument("--output", type=Path, default=FASHION_SUBSET_PATH)
    parser.add_argument(
        "--check", action="store_true", help="compare with the existing file instead of writing it"
    )
    args = parser.parse_args(argv)

    data = npz_bytes(subset_arrays(args.source))
    digest = hashlib.sha256(data).hexdigest()
    if args.check:
        same = args.output.is_file() and args.output.read_bytes() == data
        print(f"{args.output}: {'matches' if same else 'DIFFERS from'} the rebuild ({digest})")
        return 0 if same else 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)
    print(f"wrote {args.output}: {len(data):,} bytes, SHA-256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
