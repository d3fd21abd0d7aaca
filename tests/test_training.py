"""The training loop and plot helpers do what the notebooks rely on."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from convae import plotting, training  # noqa: E402


def regression_problem():
    gen = training.seed_everything(0)
    x = torch.randn(256, 3, generator=gen)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    return [(x[i : i + 32], y[i : i + 32]) for i in range(0, 256, 32)]


def mse(model, batch):
    x, y = batch
    return torch.nn.functional.mse_loss(model(x), y)


def test_train_learns_and_records_every_step():
    batches = regression_problem()
    training.seed_everything(0)
    model = torch.nn.Linear(3, 1)
    history = training.train(model, lambda: batches, mse, epochs=20, lr=0.05, device=torch.device("cpu"))
    assert len(history) == 20 * len(batches)
    assert history[-1] < 0.01 * history[0]


def test_max_steps_caps_training():
    batches = regression_problem()
    history = training.train(
        torch.nn.Linear(3, 1), lambda: batches, mse, epochs=10, max_steps=5, device=torch.device("cpu")
    )
    assert len(history) == 5


def test_seeding_makes_training_reproducible():
    def run():
        training.seed_everything(3)
        model = torch.nn.Linear(3, 1)
        return training.train(model, regression_problem, mse, epochs=2, device=torch.device("cpu"))

    assert run() == run()


def test_evaluate_weights_by_batch_size():
    model = torch.nn.Linear(3, 1)
    batches = regression_problem()
    value = training.evaluate(model, batches, mse, device=torch.device("cpu"))
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    with torch.no_grad():
        expected = float(mse(model, (x, y)))
    assert abs(value - expected) < 1e-5


class RecordsMoves(torch.nn.Linear):
    """A layer that remembers every device it was moved to."""

    def __init__(self):
        super().__init__(3, 1)
        self.moves = []

    def to(self, *args, **kwargs):
        self.moves.append(torch.device(args[0]))
        return super().to(*args, **kwargs)


def test_train_and_evaluate_run_where_the_model_is_or_go_there_and_back():
    batches = regression_problem()
    cpu, meta = torch.device("cpu"), torch.device("meta")
    model = RecordsMoves()
    training.train(model, lambda: batches, mse, max_steps=2)
    training.evaluate(model, batches, mse)
    assert model.moves == [], "without device=, the model stays where it is"
    model.moves.clear()
    with training.on_device(model, "meta") as device:
        assert device == meta and training.model_device(model) == meta
        model.to_empty(device=cpu)  # meta tensors hold no data to copy back: give them storage
    assert model.moves == [meta, cpu], "with a device, there and back"
    assert training.model_device(torch.nn.Linear(2, 2, device="meta")).type == "meta"
    assert training.model_device(torch.nn.ReLU()).type == "cpu"


def test_evaluate_leaves_the_model_in_its_mode():
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Dropout(0.5))
    model.eval()
    training.evaluate(model, regression_problem(), mse)
    assert not model.training
    model.train()
    training.evaluate(model, regression_problem(), mse)
    assert model.training


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_model_trained_on_the_gpu_comes_back_for_cpu_data():
    batches = regression_problem()
    model = torch.nn.Linear(3, 1)
    training.train(model, lambda: batches, mse, max_steps=3, device="cuda")
    assert training.evaluate(model, batches, mse, device="cuda") > 0
    assert training.model_device(model).type == "cpu"
    model(batches[0][0])  # the data never left the CPU


def test_grading_mode_never_picks_cuda(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training.pick_device().type == "cpu"


def test_image_grid_and_loss_curves_draw():
    images = torch.rand(2, 5, 1, 8, 8)
    fig = plotting.image_grid(list(images), row_titles=["a", "b"], col_titles=list("vwxyz"))
    (ax,) = fig.axes
    shown = ax.images[0].get_array()
    assert shown.shape == (2 * 8 + 1, 5 * 8 + 4, 3)  # 1-pixel gaps between tiles
    assert np.allclose(shown[9:17, 18:26, 0], images[1, 2, 0].numpy())  # row 1, column 2
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert [t.get_text() for t in ax.get_xticklabels()] == list("vwxyz")
    colour = plotting.montage([torch.rand(3, 3, 4, 4)])
    assert colour.shape == (4, 3 * 4 + 2 * 2, 3)
    ax = plotting.loss_curves({"run": [3.0, 2.0, 1.0]}, smooth=2)
    assert len(ax.lines) == 1
