"""Train the shipped ps2 autoencoder weights and print the figures the notebook quotes.

The model classes, the loss and the noise are the *reference answers* of
``source/ps2/conv_autoencoders.ipynb``: this script reads that notebook at run time and executes
its imports cell and its answer cells, so no solution code lives in ``tools/``. The settings
(noise level, denoiser channels, batch size, optimiser, data order) are those of the notebook.

Writes ``convae/assets/ae_upsample.pt``, ``ae_transposed.pt`` and ``ae_denoise.pt`` (plain
state_dicts, float32) and prints, for the full Fashion-MNIST test set: the Bernoulli test loss of
the upsampling and the transposed-convolution autoencoders, the denoising PSNR (noisy input,
denoiser output, plain autoencoder on the noisy input), two artifact measures (the share of the
reconstruction error at the checkerboard frequencies, and the texture that reconstructions add in
regions where the original is flat), and the training time of every epoch.

    python tools/train_autoencoders.py                        # 5 epochs each, full data, save
    python tools/train_autoencoders.py --epochs 1 --no-save   # measure only
    python tools/train_autoencoders.py --evaluate             # figures of the shipped weights
    python tools/train_autoencoders.py --subset --epochs 1 --no-save   # quick smoke run

Runs on one CPU thread by default (``--threads``): the machine is shared, and these small
models gain little from more threads.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing the package

from convae import notebooks  # noqa: E402
from convae.data import load_images  # noqa: E402
from convae.pretrained import load_weights, save_weights  # noqa: E402
from convae.training import evaluate, seed_everything, train  # noqa: E402

NOTEBOOK = REPO / "source" / "ps2" / "conv_autoencoders.ipynb"
DENOISER_CHANNELS = (32, 32, 16)
BATCH_SIZE = 64
LR = 1e-3


def reference_namespace(path: Path = NOTEBOOK) -> dict:
    """Execute the notebook's imports cell and every answer cell; return the namespace."""
    nb = notebooks.read(path)
    namespace: dict = {"__name__": "ps2_reference"}
    for cell in nb.cells:
        if notebooks.grade_id(cell) == "imports" or notebooks.is_answer_cell(cell):
            exec(compile(cell.source, f"<{path.name}:{notebooks.grade_id(cell)}>", "exec"), namespace)
    for name in ("ConvAutoencoder", "TransposedConvDecoder", "reconstruction_loss", "add_noise"):
        if name not in namespace:
            raise SystemExit(f"{path} defines no {name}")
    return namespace


def notebook_constant(name: str, path: Path = NOTEBOOK) -> float:
    """A ``NAME = number`` constant set in one of the notebook's cells."""
    for cell in notebooks.read(path).cells:
        match = re.search(rf"^{name} = ([0-9.]+)", cell.source, re.MULTILINE)
        if match:
            return float(match.group(1))
    raise SystemExit(f"{path} sets no {name}")


def psnr(images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    mse = ((images - reference) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(1 / mse)


@torch.no_grad()
def denoising_scores(ns, models: dict, data, std: float, seed: int = 0) -> dict:
    """Mean test PSNR of the noisy images and of each model's reconstruction (as in the notebook)."""
    generator = torch.Generator().manual_seed(seed)
    scores = {"noisy": []} | {name: [] for name in models}
    for images, _ in data.loader(500, shuffle=False):
        noisy = ns["add_noise"](images, std, generator=generator)
        scores["noisy"].append(psnr(noisy, images))
        for name, model in models.items():
            scores[name].append(psnr(model.eval().reconstruct(noisy), images))
    return {name: float(torch.cat(values).mean()) for name, values in scores.items()}


@torch.no_grad()
def nyquist_share(model, data) -> float:
    """Share of the reconstruction error's power at the checkerboard frequencies.

    A pattern that alternates every pixel lives at frequency index 14 of a 28-point DFT along
    rows, columns or both; with a flat error spectrum those 55 of 784 bins would hold 7 %.
    """
    power = torch.zeros(28, 28)
    for images, _ in data.loader(500, shuffle=False):
        error = model.eval().reconstruct(images) - images
        power += torch.fft.fft2(error[:, 0]).abs().pow(2).sum(0)
    mask = torch.zeros(28, 28, dtype=torch.bool)
    mask[14, :] = True
    mask[:, 14] = True
    return float(power[mask].sum() / power.sum())


@torch.no_grad()
def flat_region_texture(model, data) -> tuple[float, float]:
    """Mean |pixel - mean of its 3x3 neighbourhood| over the flat bright regions of the originals.

    Flat bright region: every pixel of the 5x5 neighbourhood is above 0.2 and they span less than
    0.1. There the original has almost no texture, so what a reconstruction shows is an artifact.
    Returns (original, reconstruction).
    """
    import torch.nn.functional as F

    def detail(images):
        blurred = F.avg_pool2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        return (images - blurred).abs()

    sums, count = [0.0, 0.0], 0
    for images, _ in data.loader(500, shuffle=False):
        high = F.max_pool2d(images, 5, 1, 2)
        low = -F.max_pool2d(-images, 5, 1, 2)
        flat = (low > 0.2) & (high - low < 0.1)
        sums[0] += float(detail(images)[flat].sum())
        sums[1] += float(detail(model.eval().reconstruct(images))[flat].sum())
        count += int(flat.sum())
    return sums[0] / count, sums[1] / count


def build_models(ns, seed: int) -> dict:
    """The three shipped models; the two 16-8-8 ones start from the same encoder weights."""
    conv_ae, transposed = ns["ConvAutoencoder"], ns["TransposedConvDecoder"]
    seed_everything(seed)
    upsample = conv_ae()
    seed_everything(seed)
    transposed_ae = conv_ae(decoder=transposed())
    seed_everything(seed)
    denoiser = conv_ae(channels=DENOISER_CHANNELS)
    return {"ae_upsample": upsample, "ae_transposed": transposed_ae, "ae_denoise": denoiser}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="ae_upsample,ae_transposed,ae_denoise")
    parser.add_argument("--no-save", action="store_true", help="do not write convae/assets/")
    parser.add_argument("--evaluate", action="store_true", help="load the shipped weights, train nothing")
    parser.add_argument("--subset", action="store_true", help="the embedded 5,000/1,000 subset (smoke run)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    ns = reference_namespace()
    loss, add_noise = ns["reconstruction_loss"], ns["add_noise"]
    noise_std = notebook_constant("NOISE_STD")
    full = not args.subset
    train_data = load_images("fashion_mnist", "train", full=full)
    test_data = load_images("fashion_mnist", "test", full=full)
    print(f"train: {train_data}\ntest:  {test_data}")
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} thread(s), {os.cpu_count()} CPUs, seed {args.seed}")

    def bernoulli(model, images):
        return loss(model(images), images)

    def denoising(model, images):
        return loss(model(add_noise(images, noise_std)), images)

    models = build_models(ns, args.seed)
    wanted = args.models.split(",")
    epoch_times: dict[str, list[float]] = {}
    for name in wanted:
        model = models[name]
        params = sum(p.numel() for p in model.parameters())
        if args.evaluate:
            load_weights(model, name)
            print(f"{name}: shipped weights, {params:,} parameters")
            continue
        loss_fn = denoising if name == "ae_denoise" else bernoulli
        seed_everything(args.seed)  # the denoiser's training noise comes from the global state
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        epoch_times[name] = []
        for epoch in range(args.epochs):
            order = train_data.loader(BATCH_SIZE, shuffle=True, seed=epoch)
            start = time.perf_counter()
            history = train(
                model,
                lambda order=order: (images for images, _ in order),
                loss_fn,
                optimizer=optimizer,
                device=torch.device("cpu"),
                desc=f"{name} epoch {epoch + 1}/{args.epochs}",
            )
            seconds = time.perf_counter() - start
            epoch_times[name].append(seconds)
            tail = sum(history[-100:]) / len(history[-100:])
            load = os.getloadavg()[0]
            print(
                f"{name} epoch {epoch + 1}: {len(history)} steps in {seconds:.1f} s, "
                f"training loss (last 100 steps) {tail:.2f}, load average {load:.1f}",
                flush=True,
            )
        if not args.no_save:
            print(f"saved {save_weights(model, name)}")

    print("\n=== measured figures ===")
    print(f"data: {test_data.source}; {args.epochs if not args.evaluate else 'shipped'} epochs")
    test_batches = lambda: (images for images, _ in test_data.loader(500, shuffle=False))  # noqa: E731
    for name in ("ae_upsample", "ae_transposed"):
        if name in wanted:
            value = evaluate(models[name], test_batches(), bernoulli, device=torch.device("cpu"))
            share = nyquist_share(models[name], test_data)
            original, texture = flat_region_texture(models[name], test_data)
            print(f"{name}: test loss {value:.2f} nats per image; error power at checkerboard {share:.2%}")
            print(f"{name}: texture in flat regions {texture:.4f} (the originals: {original:.4f})")
    if "ae_denoise" in wanted:
        scored = {"denoiser": models["ae_denoise"]}
        if "ae_upsample" in wanted:
            scored["plain autoencoder"] = models["ae_upsample"]
        scores = denoising_scores(ns, scored, test_data, noise_std)
        for name, value in scores.items():
            print(f"test PSNR at noise std {noise_std}, {name}: {value:.2f} dB")
        print(f"denoising PSNR gain: {scores['denoiser'] - scores['noisy']:+.2f} dB")
    for name, times in epoch_times.items():
        listed = ", ".join(f"{t:.1f}" for t in times)
        print(f"{name}: seconds per epoch {listed} (mean {sum(times) / len(times):.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
