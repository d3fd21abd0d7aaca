"""Train the VAE weights shipped in convae/assets/vae_*.pt (problem set 3).

The models, the loss and the loss wrapper are not written here: they are read from the
notebooks in ``source/ps3/`` at run time (locked cells by their nbgrader grade_id, and the
reference answer of ``RegularisedLoss``), so the weights always fit the classes the notebooks
define.

    python tools/train_vae.py fashion_2d    # vae_fashion_2d.pt: 2-D latent conv VAE (vae_models)
    python tools/train_vae.py fashion_32d   # vae_fashion_32d.pt: factorised decoder (vae_models, section 5)
    python tools/train_vae.py fashion_pixel # vae_fashion_pixel.pt: autoregressive decoder (section 5)
    python tools/train_vae.py beta_sweep    # vae_beta_*.pt: one MLP VAE per beta (vae_balance)
    python tools/train_vae.py all

Training uses the full Fashion-MNIST training set (60,000 images; ``apt-get install
dataset-fashion-mnist``), one CPU thread and fixed seeds. Measured on the course machine
(2 cores shared with other jobs): ``fashion_2d`` 20 epochs (9,380 steps) in 23 minutes, test
-ELBO 260.6 nats; ``beta_sweep`` 6 x 10 epochs in 9 minutes.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing the package

from convae import notebooks, pretrained, training  # noqa: E402
from convae.data import load_images  # noqa: E402

SOURCE = REPO / "source" / "ps3"
FASHION_2D_EPOCHS = 20
COMPARISON_EPOCHS = 10  # the factorised and the autoregressive decoder of section 5
BETA_EPOCHS = 10


# vae_models runs part 1's answers (its load_part1 cell reads the student's vae_theory); the
# tools run the reference ones from source/ instead.
PART1_CELLS = ["imports", "kl_standard_normal", "reparameterize", "vae_loss"]
MODELS_CELLS = [
    "imports",
    "GaussianEncoder",
    "VAE",
    "negative_elbo",
    "batch_loss",
    "fashion_model",
    "pixel_model",
]


def notebook_namespace(notebook: str, grade_ids: list[str]) -> dict:
    """Execute the named cells of ``source/ps3/<notebook>.ipynb`` in a fresh namespace (for
    vae_models, after part 1's answers)."""
    namespace = (
        notebooks.run_cells(SOURCE / "vae_theory.ipynb", PART1_CELLS) if notebook == "vae_models" else None
    )
    return notebooks.run_cells(SOURCE / f"{notebook}.ipynb", grade_ids, namespace)


def full_split(split: str):
    data = load_images("fashion_mnist", split, full=True)
    print(data.source, flush=True)
    return data


def shuffled_epochs(dataset, seed: int, batch_size: int = 128):
    """A batches() function for convae.training.train: a new, seeded shuffle every epoch."""
    seeds = itertools.count(seed)
    return lambda: dataset.loader(batch_size, shuffle=True, seed=next(seeds))


@torch.no_grad()
def test_loss(model, loss_fn, images) -> float:
    model.eval()
    total = sum(float(loss_fn(model, (chunk, None))) * len(chunk) for chunk in images.split(1000))
    model.train()
    return total / len(images)


# name of the weights -> (how the notebook builds the model, epochs)
FASHION_MODELS = {
    "vae_fashion_2d": ("gaussian_cnn_fashion(latent_dim=2)", FASHION_2D_EPOCHS),
    "vae_fashion_32d": (
        "gaussian_cnn_fashion(latent_dim=32, hidden_dim=256, channels=(16, 32))",
        COMPARISON_EPOCHS,
    ),
    "vae_fashion_pixel": ("gaussian_pixelcnn_fashion()", COMPARISON_EPOCHS),
}


def train_fashion(name: str) -> None:
    """Train one of the vae_models notebook's Fashion-MNIST VAEs and ship its weights as ``name``."""
    ns = notebook_namespace("vae_models", MODELS_CELLS)
    build, epochs = FASHION_MODELS[name]
    train_set, test_set = full_split("train"), full_split("test")
    training.seed_everything(0)
    model = eval(build, ns)  # noqa: S307 -- a constant expression of this file, in the notebook's namespace
    start = time.time()
    history = training.train(
        model,
        shuffled_epochs(train_set, seed=0),
        ns["batch_loss"],
        epochs=epochs,
        lr=1e-3,
        device=torch.device("cpu"),
        desc=name,
    )
    loss = test_loss(model, ns["batch_loss"], test_set.images)
    path = pretrained.save_weights(model, name)
    print(
        f"{name} = {build}: {len(history)} steps in {time.time() - start:.0f} s, "
        f"test -ELBO {loss:.2f} nats; wrote {path}",
        flush=True,
    )


def train_beta_sweep() -> None:
    ns = notebook_namespace("vae_balance", ["imports", "model", "loss_terms", "RegularisedLoss"])
    train_set, test_set = full_split("train"), full_split("test")
    for beta in ns["BETAS"]:
        training.seed_everything(0)
        model = ns["make_model"]()
        objective = ns["RegularisedLoss"](ns["reconstruction_loss"], ns["kl_regulariser"], beta)

        def loss_fn(model, batch, objective=objective):
            images, _ = batch
            return objective(model(images), images)

        start = time.time()
        history = training.train(
            model,
            shuffled_epochs(train_set, seed=0),
            loss_fn,
            epochs=BETA_EPOCHS,
            lr=1e-3,
            device=torch.device("cpu"),
            desc=f"beta={beta:g}",
        )
        name = ns["weights_name"](beta)
        path = pretrained.save_weights(model, name)
        model.eval()
        with torch.no_grad():
            objective(model(test_set.images), test_set.images)
        print(
            f"beta={beta:g}: {len(history)} steps in {time.time() - start:.0f} s; test reconstruction "
            f"{objective.last_loss:.2f}, KL {objective.last_reg:.2f} nats; wrote {path}",
            flush=True,
        )


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    targets = [name.removeprefix("vae_") for name in FASHION_MODELS]
    parser.add_argument("target", choices=[*targets, "beta_sweep", "all"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    for target in targets:
        if args.target in (target, "all"):
            train_fashion(f"vae_{target}")
    if args.target in ("beta_sweep", "all"):
        train_beta_sweep()


if __name__ == "__main__":
    main()
