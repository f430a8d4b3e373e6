"""move_exported_model_to_eval / _to_train / allow_exported_model_train_eval on exported graphs."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from pt2q.export_utils import (
    allow_exported_model_train_eval,
    move_exported_model_to_eval,
    move_exported_model_to_train,
)

aten = torch.ops.aten


class ConvBnDrop(nn.Module):
    """conv -> bn(eps=1e-3, momentum=0.3) -> relu -> dropout(p=0.3) -> linear, non-default settings."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4, eps=1e-3, momentum=0.3)
        self.drop = nn.Dropout(p=0.3)
        self.fc = nn.Linear(4 * 6 * 6, 5)
        self.bn1d = nn.BatchNorm1d(5, eps=2e-4, momentum=0.05)
        self.bn_nostats = nn.BatchNorm1d(5, track_running_stats=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.drop(torch.relu(self.bn(self.conv(x))))  # (N, 4, 6, 6)
        return self.bn_nostats(self.bn1d(self.fc(y.flatten(1))))  # (N, 5)


def _settings(gm: torch.fx.GraphModule) -> list[tuple[str, tuple[object, ...]]]:
    """(op, args without node inputs) for every dropout / batch-norm node, in graph order."""
    out = []
    for node in gm.graph.nodes:
        if node.target in (aten.dropout.default, aten.batch_norm.default):
            out.append(
                (
                    node.target.__name__,
                    tuple(a for a in node.args if not isinstance(a, torch.fx.Node)),
                )
            )
    return out


def _nbt_adds(gm: torch.fx.GraphModule) -> int:
    return sum(1 for n in gm.graph.nodes if n.target == aten.add_.Tensor)


def _export(mode: str) -> tuple[nn.Module, torch.fx.GraphModule, torch.Tensor]:
    torch.manual_seed(0)
    model = ConvBnDrop()
    getattr(model, mode)()
    x = torch.randn(8, 3, 8, 8)
    gm = torch.export.export(copy.deepcopy(model), (x,)).module()
    return model, gm, x


TRAIN_SETTINGS = [
    ("batch_norm.default", (True, 0.3, 0.001, False)),
    ("dropout.default", (0.3, True)),
    ("batch_norm.default", (True, 0.05, 0.0002, False)),
    ("batch_norm.default", (None, None, True, 0.1, 1e-05, False)),
]
EVAL_SETTINGS = [
    ("batch_norm.default", (False, 0.3, 0.001, False)),
    ("dropout.default", (0.3, False)),
    ("batch_norm.default", (False, 0.05, 0.0002, False)),
    # no running stats: batch statistics in eval too, as nn.BatchNorm does
    ("batch_norm.default", (None, None, True, 0.1, 1e-05, False)),
]


@pytest.mark.parametrize("exported_in", ["train", "eval"])
def test_settings_survive_round_trips(exported_in: str) -> None:
    _, gm, _ = _export(exported_in)
    for _ in range(2):
        move_exported_model_to_eval(gm)
        assert _settings(gm) == EVAL_SETTINGS
        assert _nbt_adds(gm) == 0
        assert not gm.training
        move_exported_model_to_train(gm)
        assert _settings(gm) == TRAIN_SETTINGS
        assert _nbt_adds(gm) == 2  # bn and bn1d; bn_nostats has no num_batches_tracked
        assert gm.training


def test_idempotent() -> None:
    _, gm, _ = _export("train")
    move_exported_model_to_eval(gm)
    code = gm.code
    move_exported_model_to_eval(gm)
    assert gm.code == code


@pytest.mark.parametrize("exported_in", ["train", "eval"])
def test_numerics_match_float_module_in_both_modes(exported_in: str) -> None:
    model, gm, x = _export(exported_in)
    for mode in ("train", "eval", "train"):
        getattr(model, mode)()
        (move_exported_model_to_train if mode == "train" else move_exported_model_to_eval)(gm)
        torch.manual_seed(123)  # dropout masks: same RNG draws in both
        expected = model(x)
        torch.manual_seed(123)
        actual = gm(x)
        torch.testing.assert_close(actual, expected, rtol=0, atol=0)
        # running stats / num_batches_tracked updated identically (train) or untouched (eval)
        for name, buf in model.named_buffers():
            torch.testing.assert_close(gm.get_buffer(name), buf, rtol=0, atol=0, msg=name)


def test_eval_differs_from_train() -> None:
    _, gm, x = _export("train")
    move_exported_model_to_eval(gm)
    a = gm(x)
    assert torch.equal(a, gm(x))  # deterministic in eval: no dropout, running stats fixed
    move_exported_model_to_train(gm)
    assert not torch.equal(a, gm(x))


def test_allow_train_eval_rebinds_methods() -> None:
    model, gm, x = _export("train")
    with pytest.raises(NotImplementedError):
        gm.eval()  # torch.export's own guard
    allow_exported_model_train_eval(gm)
    gm.eval()
    assert _settings(gm) == EVAL_SETTINGS
    gm.train()
    assert _settings(gm) == TRAIN_SETTINGS
    gm.train(False)
    assert _settings(gm) == EVAL_SETTINGS
    model.eval()
    torch.testing.assert_close(gm(x), model(x), rtol=0, atol=0)


def test_decomposed_eval_graph_switches_to_train() -> None:
    model, _, x = _export("eval")
    gm = torch.export.export(copy.deepcopy(model), (x,)).run_decompositions().module()
    move_exported_model_to_train(gm)
    targets = [n.target for n in gm.graph.nodes]
    assert aten._native_batch_norm_legit_no_training.default not in targets
    legit = [n for n in gm.graph.nodes if n.target == aten._native_batch_norm_legit.default]
    assert [n.args[5:] for n in legit] == [(True, 0.3, 0.001), (True, 0.05, 0.0002)]
    move_exported_model_to_eval(gm)
    assert [n.args[5:] for n in legit] == [(False, 0.3, 0.001), (False, 0.05, 0.0002)]
    model.eval()
    torch.testing.assert_close(gm(x), model(x), rtol=0, atol=0)


def test_decomposed_train_graph_is_refused_with_node_name() -> None:
    model, _, x = _export("train")
    gm = torch.export.export(copy.deepcopy(model), (x,)).run_decompositions().module()
    with pytest.raises(NotImplementedError, match="node '_native_batch_norm_legit_functional'"):
        move_exported_model_to_eval(gm)


def test_plain_module_is_refused() -> None:
    with pytest.raises(TypeError, match="torch.export.export.*got ConvBnDrop"):
        move_exported_model_to_eval(ConvBnDrop())  # type: ignore[arg-type]
