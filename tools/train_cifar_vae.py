"""Train weights for the CIFAR-10 VAE of problem set 3 (``gaussian_cnn_cifar10``), when the data is here.

CIFAR-10 cannot be downloaded on the course's grading machines, so no such weights ship with
the package. Where the data is (``cifar-10-python.tar.gz`` in ``CONVAE_DATA``, ``~/.cache/convae``
or ``--root``; or let the loader download it), this trains the reference model of
``source/ps3/vae_models.ipynb`` with the notebook's own loss and writes a plain state dict:

    python tools/train_cifar_vae.py --epochs 10             # writes convae/assets/vae_cifar10.pt
    python tools/train_cifar_vae.py --epochs 1 --limit 5000 --out /tmp/quick.pt

Any model with the published layer shapes then takes the weights, whatever it names its layers:
``pretrained.load_weights(gaussian_cnn_cifar10(), "vae_cifar10")`` in the notebook, which names the
first layer whose shape differs. The tool prints its measured seconds per 1,000 images and the
time a full epoch (50,000 images) would take at that speed. Measured on the course machine's CPU
(2 cores, shared): 5.4 s per 1,000 images, so about 5 minutes per epoch and 45 minutes for the
default 10 epochs.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing the package
sys.path.insert(0, str(Path(__file__).parent))

import train_vae  # noqa: E402

from convae import pretrained, training  # noqa: E402
from convae.data import DataNotFoundError, load_cifar10  # noqa: E402

CELLS = [*(cell for cell in train_vae.MODELS_CELLS if cell != "pixel_model"), "gaussian_cnn_cifar10"]
FULL_EPOCH = 50_000


def train_cifar(epochs: int, out: Path | None = None, limit: int | None = None, **where) -> Path:
    """Train the reference gaussian_cnn_cifar10 and write its weights; returns the file.

    ``where``: ``root`` and ``download`` for ``load_cifar10``.
    """
    dataset = load_cifar10("train", **where)
    print(dataset.source, flush=True)
    if limit:
        dataset = dataclasses.replace(dataset, images=dataset.images[:limit], labels=dataset.labels[:limit])
    ns = train_vae.notebook_namespace("vae_models", CELLS)
    training.seed_everything(0)
    model = ns["gaussian_cnn_cifar10"]()
    batches = train_vae.shuffled_epochs(dataset, seed=0)
    start = time.time()
    device = training.pick_device()
    history = training.train(model, batches, ns["batch_loss"], epochs=epochs, device=device, desc="CIFAR-10")
    seconds = time.time() - start
    per_thousand = 1000 * seconds / (epochs * len(dataset))
    epoch_minutes = per_thousand * FULL_EPOCH / 1000 / 60
    print(
        f"{len(history)} steps in {seconds:.0f} s ({per_thousand:.1f} s per 1,000 images, so about "
        f"{epoch_minutes:.0f} min per full epoch here); last -ELBO {history[-1]:.1f} nats",
        flush=True,
    )
    path = out or pretrained.weights_path("vae_cifar10")
    state = {key: value.detach().cpu().float().clone() for key, value in model.state_dict().items()}
    torch.save(state, path)
    print(f"wrote {path}", flush=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--root", help="a folder holding cifar-10-python.tar.gz or cifar-10-batches-py/")
    parser.add_argument("--out", type=Path, help="the weights' file (default convae/assets/vae_cifar10.pt)")
    parser.add_argument("--limit", type=int, help="train on the first LIMIT images only")
    parser.add_argument("--no-download", action="store_true", help="use local files only")
    args = parser.parse_args(argv)
    try:
        train_cifar(args.epochs, args.out, args.limit, root=args.root, download=not args.no_download)
    except DataNotFoundError as error:
        print(f"train_cifar_vae: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
