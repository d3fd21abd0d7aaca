"""The ps3 VAE weights and tools: shipped weights fit the notebooks' models, the tools' plumbing works."""

import pytest
import torch
from conftest import load_tool

from convae import notebooks, pretrained


@pytest.fixture(scope="module")
def train_vae():
    return load_tool("train_vae")


@pytest.fixture(scope="module")
def bench_vae():
    return load_tool("bench_vae")


def test_fashion_2d_weights_fit_the_models_notebook(train_vae):
    ns = train_vae.notebook_namespace("vae_models", train_vae.MODELS_CELLS)
    model = pretrained.load_weights(ns["gaussian_cnn_fashion"](latent_dim=2), "vae_fashion_2d")
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        mu, logvar = model.encoder(x)
        assert mu.shape == logvar.shape == (3, 2)
        assert model.sample(4, generator=torch.Generator().manual_seed(0)).shape == (4, 1, 28, 28)


def test_beta_sweep_weights_fit_the_balance_notebook(train_vae):
    ns = train_vae.notebook_namespace("vae_balance", ["imports", "model", "loss_terms", "RegularisedLoss"])
    assert len(ns["BETAS"]) >= 3
    for beta in ns["BETAS"]:
        assert pretrained.weights_path(ns["weights_name"](beta)).exists(), beta
        pretrained.load_weights(ns["make_model"](), ns["weights_name"](beta))
    # The reference RegularisedLoss, as the training script uses it.
    objective = ns["RegularisedLoss"](ns["reconstruction_loss"], ns["kl_regulariser"], 2.0)
    model = ns["make_model"]()
    x = torch.rand(5, 1, 28, 28)
    total = objective(model(x), x)
    assert abs(float(total.detach()) - (objective.last_loss + 2.0 * objective.last_reg)) < 1e-3


@pytest.fixture(scope="module")
def models_notebook(train_vae):
    return train_vae.notebook_namespace("vae_models", train_vae.MODELS_CELLS)


def test_comparison_weights_fit_the_models_notebook(train_vae, models_notebook):
    for name, (build, _) in train_vae.FASHION_MODELS.items():
        model = pretrained.load_weights(eval(build, models_notebook), name)
        x = torch.rand(2, 1, 28, 28)
        with torch.no_grad():
            assert float(models_notebook["negative_elbo"](model, x)[0]) > 0, name


def test_autoregressive_decoder_sees_only_earlier_pixels(models_notebook):
    torch.manual_seed(0)
    model = models_notebook["gaussian_pixelcnn_fashion"]()
    z, x = torch.randn(1, 32), torch.rand(1, 1, 28, 28)
    for row, col in [(0, 0), (13, 7), (27, 27), (5, 0)]:
        changed = x.clone()
        changed[0, 0, row, col] += 1
        with torch.no_grad():
            moved = (model.decoder(z, changed) - model.decoder(z, x)).abs()[0, 0].flatten()
        here = row * 28 + col
        assert float(moved[: here + 1].max()) == 0, "a pixel's logit must not see itself or later pixels"
        if here < 28 * 28 - 1:
            assert float(moved[here + 1 :].max()) > 0, "later pixels should see this one"


def test_autoregressive_samples_are_each_pixels_mean_given_the_earlier_ones(models_notebook):
    torch.manual_seed(0)
    model = models_notebook["gaussian_pixelcnn_fashion"]().eval()
    samples = model.sample(3, generator=torch.Generator().manual_seed(7))
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(7))  # the codes sample() drew
    with torch.no_grad():
        means = torch.sigmoid(model.decoder(z, samples))
    assert samples.shape == (3, 1, 28, 28)
    assert torch.allclose(means, samples, atol=1e-5)


def test_solution_markers_are_stripped():
    code = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
    assert "SOLUTION" not in notebooks.strip_solution_markers(code)


def test_benchmark_models_and_score(bench_vae):
    baseline = bench_vae.PytorchExamplesVAE()
    assert sum(p.numel() for p in baseline.parameters()) == 652_824  # 784-400-20 of pytorch/examples
    ns = bench_vae.notebook_namespace(
        ["imports", "GaussianEncoder", "VAE", "negative_elbo", "batch_loss", "fashion_model"]
    )
    ours = ns["gaussian_cnn_fashion"](latent_dim=4, hidden_dim=16, channels=(4, 8))
    images = torch.rand(20, 1, 28, 28)
    for model in (ours, baseline):
        trainer = bench_vae.Trainer("m", "model", model, images, batch_size=8, lr=1e-3, seed=0)
        trainer.run(0.01)
        assert trainer.steps >= 1
        nats, stderr = bench_vae.evaluate(model, images)
        assert 0 < nats < 1e4 and stderr >= 0
    # The score is the notebook's loss, per image: same mean on the same noise.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        per_image = bench_vae.per_image_negative_elbo(ours, images).mean()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        notebook = ns["negative_elbo"](ours, images)[0]
    assert abs(float(per_image.detach()) - float(notebook.detach())) < 1e-3
