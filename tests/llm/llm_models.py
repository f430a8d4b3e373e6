"""Small models and hand references shared by the LLM scheme tests."""

from __future__ import annotations

import torch
from torch import nn
from torch.fx import GraphModule

__all__ = [
    "TwoLinears",
    "export_eval",
    "qd_counts",
    "hand_per_token_qparams",
    "hand_symmetric_weight",
    "hand_asymmetric_groups",
    "sqnr_db",
]


class TwoLinears(nn.Module):
    """(…, 64) -> linear 128 -> relu -> linear 32 (no bias): two quantized linears."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Linear(64, 128)
        self.down = nn.Linear(128, 32, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(torch.relu(self.up(x)))


def export_eval(model: nn.Module, *args: torch.Tensor) -> GraphModule:
    return torch.export.export(model.eval(), args).module()


def qd_counts(gm: GraphModule) -> dict[str, int]:
    """quantized_decomposed op name (overload dropped) -> number of calls."""
    counts: dict[str, int] = {}
    for node in gm.graph.nodes:
        name = str(node.target)
        if name.startswith("quantized_decomposed."):
            short = name.split(".")[1]
            counts[short] = counts.get(short, 0) + 1
    return counts


def hand_per_token_qparams(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """XNNPACK's per-token asymmetric int8 qparams (the spec of
    ``choose_qparams_per_token_asymmetric``), in float32 like the op: scale = (max+ - min-) /
    255; the zero point comes from the end with the smaller rounding error."""
    lo = x.amin(-1, keepdim=True).clamp(max=0)
    hi = x.amax(-1, keepdim=True).clamp(min=0)
    scale = torch.clamp((hi - lo) / 255.0, min=torch.finfo(torch.float32).eps)
    d_lo, d_hi = lo / scale, hi / scale
    zp = torch.where((-128 + d_lo) + (127 + d_hi) > 0, -128 - d_lo, 127 - d_hi)
    return scale.double(), zp.clamp(-128, 127).round()


def hand_symmetric_weight(
    w: torch.Tensor, qmin: int, qmax: int, group: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(integer values, dequantized weight) of symmetric per-channel (group None) or per-group
    quantization: scale = max|w| / ((qmax - qmin) / 2), eps 2**-12, q = clamp(round(w / s))."""
    n, k = w.shape
    blocks = w.reshape(n, -1, group if group else k)
    amax = blocks.abs().amax(-1, keepdim=True)
    scale = torch.clamp(amax / ((qmax - qmin) / 2), min=2**-12)
    q = torch.clamp(torch.round(blocks * (1.0 / scale)), qmin, qmax)
    return q.reshape(n, k), (q * scale).reshape(n, k)


def hand_asymmetric_groups(
    w: torch.Tensor, qmin: int, qmax: int, group: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Asymmetric per-group: scale = (max+ - min-) / (qmax - qmin), zp = clamp(qmin -
    round(min- / scale)), q = clamp(round(w / s) + zp); dequantized (q - zp) * s."""
    n, k = w.shape
    blocks = w.reshape(n, -1, group)
    lo = blocks.amin(-1, keepdim=True).clamp(max=0)
    hi = blocks.amax(-1, keepdim=True).clamp(min=0)
    scale = torch.clamp((hi - lo) / (qmax - qmin), min=2**-12)
    zp = torch.clamp(qmin - torch.round(lo / scale), qmin, qmax)
    q = torch.clamp(torch.round(blocks * (1.0 / scale)) + zp, qmin, qmax)
    return q.reshape(n, k), ((q - zp) * scale).reshape(n, k)


def sqnr_db(ref: torch.Tensor, out: torch.Tensor) -> float:
    return float(10 * torch.log10(ref.pow(2).mean() / (out - ref).pow(2).mean()))
