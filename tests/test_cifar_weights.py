"""CIFAR-10 VAE weights: trained by tools/train_cifar_vae.py on files in the real CIFAR-10 format,
loaded into any model with the published layer shapes, refused with the first mismatching layer."""

import pytest
import torch
from conftest import load_tool
from test_data import cifar_members, write_cifar_archive
from validity_harness import load_catalogues

from convae import pretrained


@pytest.fixture(scope="module")
def tool():
    return load_tool("train_cifar_vae")


@pytest.fixture(scope="module")
def notebook(tool):
    return tool.train_vae.notebook_namespace("vae_models", tool.CELLS)


@pytest.fixture(scope="module")
def weights(tool, tmp_path_factory):
    """Weights trained for one epoch on a CIFAR-10 archive of 5 x 8 training images."""
    folder = tmp_path_factory.mktemp("cifar")
    members, _ = cifar_members(per_batch=8)
    write_cifar_archive(folder / "cifar-10-python.tar.gz", members)
    out = folder / "vae_cifar10.pt"
    assert tool.main(["--epochs", "1", "--root", str(folder), "--out", str(out), "--no-download"]) == 0
    return out


def student_model(label: str):
    """A catalogued correct gaussian_cnn_cifar10 (its own layer names), built in its namespace."""
    catalogue = next(c for c in load_catalogues() if c.notebook == "ps3/vae_models")
    variants = [v for v in catalogue.correct_variants if v.name == "gaussian_cnn_cifar10"]
    variant = next(v for v in variants if label in v.label)
    namespace: dict = {}
    exec(compile(variant.source, "<variant>", "exec"), namespace)
    return namespace["gaussian_cnn_cifar10"]()


def test_training_writes_weights_that_the_reference_model_loads(weights, notebook, capsys):
    model = pretrained.load_weights(notebook["gaussian_cnn_cifar10"](), "vae_cifar10", path=weights)
    state = torch.load(weights, weights_only=True)
    assert all(torch.equal(model.state_dict()[key], value) for key, value in state.items())
    assert not model.training


def test_a_model_with_other_layer_names_takes_the_weights_in_order(weights, notebook):
    reference = pretrained.load_weights(notebook["gaussian_cnn_cifar10"](), "vae_cifar10", path=weights)
    theirs = student_model("explicit module classes")
    assert set(theirs.state_dict()) != set(reference.state_dict())
    pretrained.load_weights(theirs, "vae_cifar10", path=weights)
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        for ours, other in zip(reference.encoder(x), theirs.encoder(x), strict=True):
            assert torch.allclose(ours, other)
        z = torch.randn(3, 16)
        assert torch.allclose(reference.decoder(z), theirs.decoder(z))


def test_the_error_names_the_first_layer_whose_shape_differs(weights, notebook):
    model = notebook["gaussian_cnn_cifar10"]()
    model.encoder.features[2] = torch.nn.Conv2d(32, 64, 5, stride=2, padding=2)  # a 5x5 second convolution
    with pytest.raises(ValueError) as error:
        pretrained.load_weights(model, "vae_cifar10", path=weights)
    message = str(error.value)
    assert "layer 'encoder.features.2'" in message
    assert "(64, 32, 5, 5)" in message and "(64, 32, 3, 3)" in message


def test_a_missing_layer_is_named(weights, notebook):
    model = notebook["gaussian_cnn_cifar10"]()
    model.decoder[-1] = torch.nn.Identity()  # the last transposed convolution left out
    partner = "has 18 tensors and your model 16: the first without a partner is .decoder.7.weight."
    with pytest.raises(ValueError, match=partner):
        pretrained.load_weights(model, "vae_cifar10", path=weights)


def test_without_the_data_the_tool_says_where_it_looked(tool, tmp_path, capsys):
    assert tool.main(["--root", str(tmp_path), "--no-download", "--out", str(tmp_path / "w.pt")]) == 2
    assert "cifar-10-python.tar.gz" in capsys.readouterr().err
    assert not (tmp_path / "w.pt").exists()
