"""No wasted q/dq: the x86 quantizer quantizes an output only for an int8 consumer (issue 10,
behaviour 5), and the lowering removes any q/dq pair whose consumers are all float."""

from __future__ import annotations

import torch
from torch import nn
from x86_models import quantize

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
