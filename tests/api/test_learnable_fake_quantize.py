"""LearnableFakeQuantize: same forward and gradients as torchao 0.18's (subprocess), learns its
scale / zero point by gradient, and works in the QAT flow."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchao_peer import register, result

from pt2q import (
    LearnableFakeQuantize,
    convert_pt2e,
    disable_range_learning,
    enable_range_learning,
    prepare_qat_pt2e,
)
from pt2q.observer import MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver
from pt2q.quantizer import QuantizationSpec, Quantizer, annotate_input_qspec_map

_SNIPPET = """
from torchao.quantization.pt2e.learnable_fake_quantize import LearnableFakeQuantize
from torchao.quantization.pt2e.observer import (
    MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver)
result = {}
for name, per_channel, grad_scaling in CASES:
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5) * 2
    if per_channel:
        fq = LearnableFakeQuantize(MovingAveragePerChannelMinMaxObserver, -128, 127,
            grad_scaling, dtype=torch.qint8, qscheme=torch.per_channel_affine, ch_axis=1)
    else:
        fq = LearnableFakeQuantize(MovingAverageMinMaxObserver, 0, 255, grad_scaling,
            dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    fq(x)
    fq.enable_range_learning()
    x2 = (torch.randn(4, 3, 5) * 3).requires_grad_()
    y = fq(x2)
    (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
    result[name] = {"y": tensor_list(y), "dscale": tensor_list(fq.scale.grad),
                    "dzp": tensor_list(fq.zero_point.grad), "dx": tensor_list(x2.grad)}
"""
CASES = [
    ("per_tensor", False, False),
    ("per_tensor_lsq", False, True),
    ("per_channel", True, False),
]


register("learnable_fake_quantize", f"CASES = {CASES!r}\n{_SNIPPET}")


@pytest.fixture(scope="module")
def torchao_results() -> dict:
    return result("learnable_fake_quantize")


def _ours(per_channel: bool, grad_scaling: bool) -> LearnableFakeQuantize:
    if per_channel:
        return LearnableFakeQuantize(
            MovingAveragePerChannelMinMaxObserver, -128, 127, grad_scaling,
            dtype=torch.int8, qscheme=torch.per_channel_affine, ch_axis=1,
        )  # fmt: skip
    return LearnableFakeQuantize(
        MovingAverageMinMaxObserver, 0, 255, grad_scaling,
        dtype=torch.uint8, qscheme=torch.per_tensor_affine,
    )  # fmt: skip


@pytest.mark.parametrize(("name", "per_channel", "grad_scaling"), CASES, ids=[c[0] for c in CASES])
def test_forward_and_gradients_match_torchao(
    name: str, per_channel: bool, grad_scaling: bool, torchao_results: dict
) -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5) * 2
    fq = _ours(per_channel, grad_scaling)
    fq(x)
    fq.enable_range_learning()
    x2 = (torch.randn(4, 3, 5) * 3).requires_grad_()
    y = fq(x2)
    (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
    ref = torchao_results[name]
    # same observer statistics and the same torch learnable fake-quant kernels: bit-identical
    assert y.double().tolist() == ref["y"]
    assert x2.grad is not None and x2.grad.double().tolist() == ref["dx"]
    assert fq.scale.grad is not None and fq.scale.grad.double().tolist() == ref["dscale"]
    assert fq.zero_point.grad is not None and fq.zero_point.grad.double().tolist() == ref["dzp"]


def test_learns_scale_by_gradient() -> None:
    torch.manual_seed(0)
    fq = _ours(per_channel=False, grad_scaling=True)
    data = torch.randn(256) * 4
    fq(data * 0.25)  # initial range too small: most values clip
    scale0 = float(fq.scale)
    fq.apply(enable_range_learning)
    assert fq.scale.requires_grad and not fq.is_observer_enabled
    opt = torch.optim.SGD([fq.scale, fq.zero_point], lr=0.05)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = (fq(data) - data).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.2 * losses[0]
    assert float(fq.scale) > 2 * scale0  # the range grew to cover the data
    fq.apply(disable_range_learning)
    assert not fq.scale.requires_grad
    scale, zp = fq.calculate_qparams()
    assert zp.dtype == torch.int64 and 0 <= int(zp) <= 255 and float(scale) > 0


class LinearInputQuantizer(Quantizer):
    def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
        spec = QuantizationSpec(
            torch.uint8, LearnableFakeQuantize.with_args(observer=MovingAverageMinMaxObserver),
            0, 255, torch.per_tensor_affine,
        )  # fmt: skip
        for node in model.graph.nodes:
            if node.target == torch.ops.aten.linear.default:
                annotate_input_qspec_map(node, node.args[0], spec)
        return model

    def validate(self, model: torch.fx.GraphModule) -> None:
        pass


def test_in_the_qat_flow() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4))
    x = torch.randn(8, 6)
    gm = torch.export.export(model, (x,)).module()
    prepared = prepare_qat_pt2e(gm, LinearInputQuantizer())
    prepared(x)
    prepared.apply(enable_range_learning)
    [fq] = [m for m in prepared.modules() if isinstance(m, LearnableFakeQuantize)]
    assert fq.scale.requires_grad
    params = {id(p) for p in prepared.parameters()}
    assert id(fq.scale) in params and id(fq.zero_point) in params  # an optimizer sees them
    prepared(x).sum().backward()
    assert fq.scale.grad is not None
    converted = convert_pt2e(prepared)
    q = [n for n in converted.graph.nodes if "quantize_per_tensor" in str(n.target)]
    scale, zp = fq.calculate_qparams()
    assert q[0].args[1:3] == (float(scale), int(zp))
