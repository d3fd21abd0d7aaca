"""The deconvnet notebook's shipped weights fit its model, classify well, and the tools hold no solution."""

import pytest
import torch
from conftest import REPO, load_tool

from convae import notebooks
from convae.data import load_fashion_mnist_subset
from convae.pretrained import load_weights, weights_path

TOOLS = [REPO / "tools" / "train_deconvnet.py", REPO / "tools" / "bench_conv_transpose.py"]


@pytest.fixture(scope="module")
def trained_model():
    model = load_tool("train_deconvnet").build_model()
    return load_weights(model, "deconvnet_fashion")


def test_weights_are_shipped_and_small():
    path = weights_path("deconvnet_fashion")
    assert path.exists(), "run tools/train_deconvnet.py"
    assert path.stat().st_size < 512 * 1024


def test_weights_fit_the_notebook_model_and_classify(trained_model):
    subset = load_fashion_mnist_subset("test")
    with torch.no_grad():
        accuracy = (trained_model(subset.images).argmax(1) == subset.labels).float().mean().item()
    assert accuracy > 0.85, f"shipped FashionCNN reaches only {accuracy:.1%} on the embedded test subset"


def test_undo_of_the_trained_features_returns_the_image_shape(trained_model):
    images = load_fashion_mnist_subset("test").images[:4]
    with torch.no_grad():
        features = trained_model.features(images)
        back = trained_model.features.undo(features)
    assert tuple(features.shape) == (4, 64, 3, 3)
    assert tuple(back.shape) == (4, 1, 28, 28)


def test_tools_copy_no_solution():
    """The scripts read the solutions from source/ at run time; no solution line is pasted in them."""
    secret_lines = set()
    for path in (REPO / "source" / "ps1").glob("*.ipynb"):
        for cell in notebooks.read(path).cells:
            inside = False
            for line in cell.source.splitlines():
                if "BEGIN SOLUTION" in line:
                    inside = True
                elif "END SOLUTION" in line:
                    inside = False
                elif inside and len(line.strip()) >= 25:
                    secret_lines.add(line.strip())
    for tool in TOOLS:
        text = tool.read_text()
        leaked = [line for line in secret_lines if line in text]
        assert not leaked, f"{tool.name} contains solution code: {leaked[0]!r}"
