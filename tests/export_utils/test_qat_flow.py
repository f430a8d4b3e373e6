"""Train/eval switching and the fake-quantizers inside a real QAT flow:
export (train) -> prepare_qat_pt2e -> train -> eval -> disable observers -> convert."""

from __future__ import annotations

import torch
from torch import nn
from torch.fx import GraphModule, Node

from pt2q.export_utils import allow_exported_model_train_eval, move_exported_model_to_eval
from pt2q.fake_quantize import FakeQuantize, FusedMovingAvgObsFakeQuantize, disable_observer
from pt2q.observer import MovingAveragePerChannelMinMaxObserver
from pt2q.quantize_pt2e import convert_pt2e, prepare_qat_pt2e
from pt2q.quantizer import QuantizationAnnotation, QuantizationSpec, Quantizer
from pt2q.tolerances import QDQ_VS_HAND_REFERENCE_STEPS, assert_within_steps

aten = torch.ops.aten

ACT = QuantizationSpec(
    dtype=torch.int8,
    quant_min=-128,
    quant_max=127,
    qscheme=torch.per_tensor_affine,
    observer_or_fake_quant_ctr=FusedMovingAvgObsFakeQuantize.with_args(),
)
WEIGHT = QuantizationSpec(
    dtype=torch.int8,
    quant_min=-127,
    quant_max=127,
    qscheme=torch.per_channel_symmetric,
    ch_axis=0,
    observer_or_fake_quant_ctr=FakeQuantize.with_args(
        observer=MovingAveragePerChannelMinMaxObserver
    ),
)


class ConvLinearQATQuantizer(Quantizer):
    """conv2d / linear: int8 activation in and out, int8 per-channel weight, float bias."""

    def annotate(self, model: GraphModule) -> GraphModule:
        for node in model.graph.nodes:
            if node.target in (aten.conv2d.default, aten.linear.default):
                act, weight = node.args[0], node.args[1]
                assert isinstance(act, Node) and isinstance(weight, Node)
                node.meta["quantization_annotation"] = QuantizationAnnotation(
                    input_qspec_map={act: ACT, weight: WEIGHT}, output_qspec=ACT, _annotated=True
                )
        return model

    def validate(self, model: GraphModule) -> None:
        return None


class ConvBnDropLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4, eps=1e-3, momentum=0.3)
        self.drop = nn.Dropout(p=0.3)
        self.fc = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.drop(torch.relu(self.bn(self.conv(x))))  # (N, 4, 6, 6)
        return self.fc(y.flatten(1))  # (N, 5)


def _settings(gm: GraphModule) -> list[tuple[object, ...]]:
    return [
        tuple(a for a in n.args if not isinstance(a, Node))
        for n in gm.graph.nodes
        if n.target in (aten.dropout.default, aten.batch_norm.default)
    ]


def test_qat_train_eval_convert() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 3, 8, 8)
    exported = torch.export.export(ConvBnDropLinear(), (x,)).module()
    prepared = allow_exported_model_train_eval(prepare_qat_pt2e(exported, ConvLinearQATQuantizer()))
    fqs = [m for m in prepared.modules() if isinstance(m, FakeQuantize)]
    # conv in / weight / out, fc in / weight / out (dropout and flatten sit between conv and fc)
    assert len(fqs) == 6
    assert [type(m).__name__ for m in fqs].count("FusedMovingAvgObsFakeQuantize") == 4

    opt = torch.optim.SGD(prepared.parameters(), lr=0.01)
    for _ in range(3):
        loss = prepared(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    prepared.eval()
    assert _settings(prepared) == [(False, 0.3, 0.001, False), (0.3, False)]
    prepared.train()
    assert _settings(prepared) == [(True, 0.3, 0.001, False), (0.3, True)]

    move_exported_model_to_eval(prepared)
    prepared.apply(disable_observer)
    expected = prepared(x)
    # no dropout, BN on running stats, qparams frozen: deterministic
    assert torch.equal(prepared(x), expected)
    (output_node,) = [n for n in prepared.graph.nodes if n.op == "output"]
    out_scale = prepared.get_submodule(str(output_node.all_input_nodes[0].target)).scale
    converted = convert_pt2e(prepared)
    q_ops = [
        n.target
        for n in converted.graph.nodes
        if n.op == "call_function" and n.target.namespace == "quantized_decomposed"
    ]
    assert q_ops.count(torch.ops.quantized_decomposed.dequantize_per_channel.default) == 2
    # one step of the output's scale (the fake-quantizer's qparams are convert's qparams)
    assert_within_steps(
        converted(x), expected, out_scale, QDQ_VS_HAND_REFERENCE_STEPS, "converted vs QAT eval"
    )
