"""No wasted q/dq: the x86 quantizer quantizes an output only for an int8 consumer (issue 10,
behaviour 5), and the lowering removes any q/dq pair whose consumers are all float."""

from __future__ import annotations

import copy

import torch
from torch import nn
from x86_models import TinyLinear, quantize

from pt2q.lowering.x86 import lower_pt2e_quantized_to_x86
from pt2q.qdq import LoweringStatus

qd = torch.ops.quantized_decomposed


class AttentionScores(nn.Module):
    """q/k/v linears -> view -> permute -> float matmul (matmul is not opted in)."""

    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(32, 32)
        self.k = nn.Linear(32, 32)
        self.v = nn.Linear(32, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, T, 32)
        b, t, _ = x.shape

        def heads(h: torch.Tensor) -> torch.Tensor:
            return h.view(b, t, 4, 8).permute(0, 2, 1, 3)

        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        return torch.matmul(torch.matmul(q, k.transpose(-2, -1)), v)


def _count(gm: torch.fx.GraphModule, target: object) -> int:
    return sum(1 for n in gm.graph.nodes if n.target == target)


def test_attention_block_quantizes_only_the_linear_input() -> None:
    torch.manual_seed(0)
    ref = quantize(AttentionScores(), (torch.randn(2, 6, 32),), reduce_range=False)
    # x is quantized once (shared by the three linears); the linear outputs and the view /
    # permute outputs feed only the float matmul, so nothing after the linears is quantized.
    assert _count(ref, qd.quantize_per_tensor.default) == 1
    assert _count(ref, qd.dequantize_per_tensor.default) == 3  # one per linear
    views = [n for n in ref.graph.nodes if n.target == torch.ops.aten.view.default]
    assert [str(u.target) for n in views for u in n.users] == ["aten.permute.default"] * 3


def _with_dangling_pair(ref: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """``ref`` with its output passed through q -> dq -> sigmoid: a pair only a float op reads."""
    gm = torch.fx.GraphModule(ref, copy.deepcopy(ref.graph))
    out = gm.graph.output_node()
    value = out.args[0][0] if isinstance(out.args[0], (tuple, list)) else out.args[0]
    qargs = (0.05, 128, 0, 255, torch.uint8)
    with gm.graph.inserting_before(out):
        q = gm.graph.call_function(qd.quantize_per_tensor.default, (value, *qargs))
        dq = gm.graph.call_function(qd.dequantize_per_tensor.default, (q, *qargs))
        sig = gm.graph.call_function(torch.ops.aten.sigmoid.default, (dq,))
    out.args = ((sig,),) if isinstance(out.args[0], (tuple, list)) else (sig,)
    gm.recompile()
    return gm


def test_lowering_removes_a_dangling_qdq_pair() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 32)
    base = quantize(TinyLinear(), (x,))
    ref = _with_dangling_pair(base)
    low = lower_pt2e_quantized_to_x86(ref, (x,), compile=False, payoff=False)
    removed = [d for d in low.report if d.reason.startswith("dangling q/dq removed")]
    assert [(d.node, d.status) for d in removed] == [
        ("quantize_per_tensor_default_2", LoweringStatus.FLOAT)
    ]
    assert "its consumers sigmoid_default run in float" in removed[0].reason
    sig = next(n for n in low.graph.nodes if n.target == torch.ops.aten.sigmoid.default)
    assert "onednn" in str(sig.args[0].target)  # sigmoid reads the kernel's float output
    with torch.no_grad():  # sigmoid of the (unrounded) linear output
        torch.testing.assert_close(low(x), torch.sigmoid(base(x)), atol=1e-5, rtol=0)


def test_int8_activation_program_stays_float_with_a_reason() -> None:
    """An XNNPACK (int8-activation) conv2d + relu program: oneDNN's x86 patterns take uint8."""
    from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
    from pt2q.quantizers.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    x = torch.randn(2, 3, 8, 8)
    q = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(model, (x,)).module(), q)
    prepared(x)
    ref = convert_pt2e(prepared)
    low = lower_pt2e_quantized_to_x86(ref, (x,), compile=False, payoff=False)
    (conv,) = [d for d in low.report if d.op == "aten.conv2d.default"]
    assert conv.status is LoweringStatus.FLOAT
    assert "is torch.int8; oneDNN's x86 int8 kernels take uint8 activations" in conv.reason
    with torch.no_grad():
        torch.testing.assert_close(low(x), ref(x), atol=0.1, rtol=0.0)
