"""BN folding in PTQ prepare (issue 2 item 5): numerics, structure, no mutation of the user model."""

from __future__ import annotations

import copy

import pytest
import torch
from conv_bn_models import OpBn
from torch import nn

from pt2q.passes.fold_bn import fold_bn_into_preceding_op

aten = torch.ops.aten

BN_TARGETS = {
    aten.batch_norm.default,
    aten._native_batch_norm_legit_no_training.default,
    aten._native_batch_norm_legit.default,
    aten.native_batch_norm.default,
}


CASES = {
    "conv1d": (lambda: OpBn(nn.Conv1d(3, 4, 3), nn.BatchNorm1d(4)), (2, 3, 10)),
    "conv2d": (lambda: OpBn(nn.Conv2d(3, 4, 3, stride=2), nn.BatchNorm2d(4)), (2, 3, 9, 9)),
    "conv2d_same_no_bias": (
        lambda: OpBn(nn.Conv2d(3, 6, 3, padding="same", bias=False), nn.BatchNorm2d(6)),
        (2, 3, 8, 8),
    ),
    "conv2d_depthwise": (
        lambda: OpBn(nn.Conv2d(4, 4, 3, groups=4), nn.BatchNorm2d(4)),
        (2, 4, 8, 8),
    ),
    "conv_transpose1d": (
        lambda: OpBn(nn.ConvTranspose1d(3, 5, 3, stride=2), nn.BatchNorm1d(5)),
        (2, 3, 7),
    ),
    "conv_transpose2d_grouped_no_bias": (
        lambda: OpBn(nn.ConvTranspose2d(4, 6, 3, groups=2, bias=False), nn.BatchNorm2d(6)),
        (2, 4, 5, 5),
    ),
    "conv2d_bn_no_affine": (
        lambda: OpBn(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, affine=False)),
        (2, 3, 6, 6),
    ),
    "linear_bn1d": (lambda: OpBn(nn.Linear(6, 5), nn.BatchNorm1d(5), relu=False), (4, 6)),
}


def _bn_count(gm: torch.fx.GraphModule) -> int:
    return sum(1 for n in gm.graph.nodes if n.target in BN_TARGETS)


def _export(model: nn.Module, x: torch.Tensor, decompose: bool = False) -> torch.fx.GraphModule:
    ep = torch.export.export(model, (x,))
    if decompose:
        ep = ep.run_decompositions()
    return ep.module()  # type: ignore[return-value]


# run_decompositions turns linear into permute + addmm, which is not a linear any more.
FOLD_PARAMS = [
    pytest.param(name, mode, id=f"{mode}-{name}")
    for mode in ("eval_export", "train_export", "decomposed")
    for name in CASES
    if not (mode == "decomposed" and name.startswith("linear"))
]


@pytest.mark.parametrize("name,mode", FOLD_PARAMS)
def test_fold_matches_float_eval(name: str, mode: str) -> None:
    torch.manual_seed(0)
    make, shape = CASES[name]
    model = make().eval()
    x = torch.randn(shape)
    expected = model(x)
    if mode == "train_export":
        model.train()
    gm = _export(model, x, decompose=(mode == "decomposed"))
    model.eval()
    assert _bn_count(gm) == 1
    assert fold_bn_into_preceding_op(gm) is True
    assert _bn_count(gm) == 0
    # No BN attribute is left behind, nor the num_batches_tracked update of a train export.
    assert not any(str(n.target).startswith("bn.") for n in gm.graph.nodes if n.op == "get_attr")
    assert not any(n.target is aten.add_.Tensor for n in gm.graph.nodes)
    # Float folding only re-associates: default float32 closeness of torch.testing.
    torch.testing.assert_close(gm(x), expected)
    assert fold_bn_into_preceding_op(gm) is False


def test_user_model_tensors_untouched() -> None:
    torch.manual_seed(0)
    model = OpBn(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
    before = copy.deepcopy(model.state_dict())
    x = torch.randn(2, 3, 8, 8)
    gm = _export(model, x)
    assert fold_bn_into_preceding_op(gm)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert model.op.weight is not None and hasattr(model.bn, "running_mean")


def test_graph_after_fold() -> None:
    torch.manual_seed(0)
    model = OpBn(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4)).eval()
    x = torch.randn(1, 3, 6, 6)
    gm = _export(model, x)
    fold_bn_into_preceding_op(gm)
    ops = [(n.op, str(n.target)) for n in gm.graph.nodes if n.op in ("get_attr", "call_function")]
    assert ops == [
        ("get_attr", "op_weight_bn_folded"),
        ("get_attr", "op_weight_bias_bn_folded"),
        ("call_function", "aten.conv2d.default"),
        ("call_function", "aten.relu.default"),
    ]


class TwoUsers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.bn(y) + y


class Linear3d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 5)
        self.bn = nn.BatchNorm1d(5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.fc(x))  # (N, 5, 5): BN normalises dim 1, not the features


@pytest.mark.parametrize(
    "model,shape",
    [
        pytest.param(TwoUsers(), (1, 3, 6, 6), id="conv_output_also_used_elsewhere"),
        pytest.param(Linear3d(), (2, 5, 5), id="linear_on_3d_input"),
        pytest.param(nn.Sequential(nn.ReLU(), nn.BatchNorm2d(3)), (1, 3, 4, 4), id="bn_after_relu"),
    ],
)
def test_not_folded(model: nn.Module, shape: tuple[int, ...]) -> None:
    model.eval()
    x = torch.randn(shape)
    gm = _export(model, x)
    assert fold_bn_into_preceding_op(gm) is False
    assert _bn_count(gm) == 1
    torch.testing.assert_close(gm(x), model(x))
