"""The shipped ps2 autoencoder weights fit the reference models and are trained.

``tools/train_autoencoders.py`` writes them from the reference answers in
``source/ps2/conv_autoencoders.ipynb``; if the reference architecture changes, these tests fail
until the weights are retrained.
"""

import pytest
import torch
from conftest import load_tool

from convae.data import load_images
from convae.pretrained import load_weights, weights_path


@pytest.fixture(scope="module")
def script():
    return load_tool("train_autoencoders")


@pytest.fixture(scope="module")
def models(script):
    namespace = script.reference_namespace()
    built = script.build_models(namespace, seed=0)
    for name, model in built.items():
        assert weights_path(name).exists(), f"{name}.pt is missing: run tools/train_autoencoders.py"
        load_weights(model, name)  # strict: raises when the architecture changed
    return namespace, built


@pytest.fixture(scope="module")
def test_subset():
    return load_images("fashion_mnist", "test", full=False)


def test_shipped_weights_are_plain_float32_state_dicts():
    for name in ("ae_upsample", "ae_transposed", "ae_denoise"):
        state = torch.load(weights_path(name), map_location="cpu", weights_only=True)
        assert all(v.dtype == torch.float32 for v in state.values()), name


def test_autoencoders_reconstruct_better_than_untrained(models, test_subset, script):
    namespace, built = models
    loss = namespace["reconstruction_loss"]
    images = test_subset.images[:500]
    with torch.no_grad():
        fresh = float(loss(script.build_models(namespace, seed=1)["ae_upsample"](images), images))
        for name in ("ae_upsample", "ae_transposed"):
            trained = float(loss(built[name](images), images))
            # Untrained: about 540 nats per image; 5 epochs on the full set: about 220.
            assert trained < 0.6 * fresh, f"{name}: test loss {trained:.1f}, untrained {fresh:.1f}"


def test_denoiser_gains_psnr(models, test_subset, script):
    namespace, built = models
    std = script.notebook_constant("NOISE_STD")
    scores = script.denoising_scores(namespace, {"denoiser": built["ae_denoise"]}, test_subset, std)
    assert scores["denoiser"] > scores["noisy"] + 5, scores
