"""Train the deconvnet notebook's Fashion-MNIST classifier; write convae/assets/deconvnet_fashion.pt.

No model code lives here. The undoable layers are graded answers of
``source/ps1/transposed_convolutions.ipynb`` and the ``FashionCNN`` class is a cell of
``source/ps1/deconvnet.ipynb``: both are read from the instructor notebooks and executed at run
time, so the shipped weights always fit the architecture the notebook describes and no solution
is copied out of ``source/``.

    python tools/train_deconvnet.py            # train (about 5 min on one CPU core), save, report
    python tools/train_deconvnet.py --check    # load the shipped weights and report test accuracy

Training: full Fashion-MNIST training set (60,000 images), 3 epochs of Adam (lr 1e-3, batch
128), seed 0, one CPU thread (deterministic on a given machine).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing the package

from convae import notebooks  # noqa: E402
from convae.data import load_images  # noqa: E402
from convae.pretrained import load_weights, save_weights, weights_path  # noqa: E402
from convae.training import evaluate, seed_everything, train  # noqa: E402

WEIGHTS = "deconvnet_fashion"
PART2 = REPO / "source" / "ps1" / "transposed_convolutions.ipynb"
PART3 = REPO / "source" / "ps1" / "deconvnet.ipynb"
PART2_CELLS = (
    "imports",
    "conv_transpose2d",
    "UndoableReLU",
    "UndoableMaxPool2d",
    "UndoableConv2d",
    "UndoableSequential",
)
PART3_CELLS = ("imports", "model_definition")


def notebook_namespace() -> dict:
    """Run the cells that define the model (undoable layers, then FashionCNN); return their globals."""
    namespace = notebooks.run_cells(PART2, PART2_CELLS)
    return notebooks.run_cells(PART3, PART3_CELLS, namespace)


def build_model() -> torch.nn.Module:
    return notebook_namespace()["FashionCNN"]()


def cross_entropy(model, batch):
    images, labels = batch
    return F.cross_entropy(model(images), labels)


def error_rate(model, batch):
    images, labels = batch
    return (model(images).argmax(1) != labels).float().mean()


def test_accuracy(model) -> float:
    test = load_images("fashion_mnist", "test", full=True)
    return 1.0 - evaluate(model, test.loader(1000, shuffle=False), error_rate, device=torch.device("cpu"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only evaluate the shipped weights")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.check:
        model = load_weights(build_model(), WEIGHTS)
        print(f"{weights_path(WEIGHTS).name}: test accuracy {test_accuracy(model):.2%}")
        return 0

    seed_everything(0)
    model = build_model()
    data = load_images("fashion_mnist", "train", full=True)
    print(data)
    start = time.perf_counter()
    history = train(
        model,
        lambda: data.loader(128, shuffle=True, seed=0),
        cross_entropy,
        epochs=args.epochs,
        lr=1e-3,
        device=torch.device("cpu"),
        desc="FashionCNN",
    )
    minutes = (time.perf_counter() - start) / 60
    accuracy = test_accuracy(model)
    path = save_weights(model, WEIGHTS)
    print(f"{len(history)} steps in {minutes:.1f} min, last loss {history[-1]:.3f}")
    print(f"test accuracy {accuracy:.2%}")
    print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
