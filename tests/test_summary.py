"""convae.summary: the Keras-like layer table printed by the notebooks."""

import pytest
import torch
from torch import nn

from convae.summary import format_shape, format_table, layer_table, summary


class TwoHeads(nn.Module):
    """A small encoder returning two tensors, with one layer used twice."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten())
        self.mu = nn.Linear(4 * 5 * 4, 2)
        self.logvar = nn.Linear(4 * 5 * 4, 2)
        self.shared = nn.Linear(2, 2, bias=False)

    def forward(self, x):
        h = self.features(x)
        mu = self.shared(self.shared(self.mu(h)))
        return mu, self.logvar(h)


def test_rows_follow_the_forward_pass_with_shapes_and_counts():
    table = layer_table(TwoHeads(), torch.zeros(6, 3, 9, 7))
    got = [(row.name, row.kind, row.output_shape, row.params) for row in table.rows]
    assert got == [
        ("features.0", "Conv2d", (6, 4, 5, 4), 3 * 4 * 9 + 4),
        ("features.1", "ReLU", (6, 4, 5, 4), 0),
        ("features.2", "Flatten", (6, 80), 0),
        ("mu", "Linear", (6, 2), 80 * 2 + 2),
        ("shared", "Linear", (6, 2), 4),
        ("shared", "Linear", (6, 2), 0),  # second call: parameters counted once
        ("logvar", "Linear", (6, 2), 80 * 2 + 2),
    ]


def test_totals_match_the_model_and_the_rows():
    model = TwoHeads()
    model.logvar.weight.requires_grad_(False)
    table = layer_table(model, torch.zeros(1, 3, 9, 7))
    assert table.total_params == sum(p.numel() for p in model.parameters())
    assert sum(row.params for row in table.rows) == table.total_params
    assert table.non_trainable_params == 160
    assert table.trainable_params == table.total_params - 160


def test_tuple_output_and_tuple_input():
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = TwoHeads()

        def forward(self, x, scale):
            return self.encoder(x * scale)

    model = Pair()
    table = layer_table(model.encoder, torch.zeros(2, 3, 9, 7))
    assert table.rows[-1].output_shape == (2, 2)
    table = layer_table(model, (torch.zeros(2, 3, 9, 7), 2.0))
    assert table.total_params == sum(p.numel() for p in model.parameters())
    # A leaf that returns a tuple shows both shapes.
    split = layer_table(_Split(), torch.zeros(3, 8))
    assert split.rows[-1].output_shape == ((3, 4), (3, 4))
    assert format_shape(split.rows[-1].output_shape) == "[N, 4], [N, 4]"


class _Split(nn.Module):
    def forward(self, x):
        return x.chunk(2, dim=1)


def test_parameters_outside_leaf_modules_get_their_own_row():
    class WithScale(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(5))
            self.body = nn.Sequential(nn.Linear(5, 3))

        def forward(self, x):
            return self.body(x * self.scale)

    table = layer_table(WithScale(), torch.zeros(2, 5))
    assert table.rows[-1].name == "(other parameters)" and table.rows[-1].params == 5
    assert table.total_params == 5 + 18


def test_layers_never_called_get_their_own_rows_after_the_others():
    class Functional(nn.Module):
        """Heads that own their parameters, applied through their weights."""

        def __init__(self):
            super().__init__()
            self.body = nn.Linear(5, 4)
            self.mu, self.logvar = nn.Linear(4, 2), nn.Linear(4, 2)

        def forward(self, x):
            h = self.body(x)
            return h @ self.mu.weight.T + self.mu.bias, nn.functional.linear(
                h, self.logvar.weight, self.logvar.bias
            )

    table = layer_table(Functional(), torch.zeros(3, 5))
    got = [(row.name, row.kind, row.output_shape, row.params) for row in table.rows]
    assert got == [("body", "Linear", (3, 4), 24), ("mu", "Linear", (), 10), ("logvar", "Linear", (), 10)]
    assert format_shape(table.rows[1].output_shape) == "-"
    assert table.total_params == 44


def test_hooks_are_removed_and_mode_is_kept_even_on_error():
    model = TwoHeads().train()
    layer_table(model, torch.zeros(1, 3, 9, 7))
    assert all(not m._forward_hooks for m in model.modules())
    assert model.training
    with pytest.raises(RuntimeError):
        layer_table(model, torch.zeros(1, 2, 9, 7))  # wrong number of channels
    assert all(not m._forward_hooks for m in model.modules())


def test_printed_table(capsys):
    result = summary(nn.Sequential(nn.Linear(4, 3), nn.Tanh()), torch.zeros(10, 4))
    text = capsys.readouterr().out
    assert "0 (Linear)" in text and "[N, 3]" in text and "Total params: 15" in text
    assert "Trainable params: 15" in text and "Non-trainable params: 0" in text
    assert str(result) == text.rstrip("\n")
    assert repr(result) == "Summary(2 rows, 15 parameters)"
    quiet = summary(nn.Linear(2, 2), torch.zeros(1, 2), batch=False, print_fn=None)
    assert "[N, 2]" in str(quiet) and "[1, 2]" in format_table(quiet, batch=False)
    assert capsys.readouterr().out == ""
