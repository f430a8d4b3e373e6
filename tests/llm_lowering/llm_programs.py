"""Reference programs of the LLM schemes, built by hand with the quantized_decomposed ops the
converted programs use (weights int8 constants -> dequantize_per_channel[_group] -> linear;
8da*: choose_qparams_per_token_asymmetric -> quantize_per_token -> dequantize_per_token)."""

from __future__ import annotations

import torch
import torch.ao.quantization.fx._decomposed  # noqa: F401

qd = torch.ops.quantized_decomposed
SCHEMES = ("int8wo", "int4wo", "8da8w", "8da4w")


def quantize_weight(w: torch.Tensor, scheme: str, group: int):
    """(q int8, scale f32, zero point int32 or None, qmin, qmax, group) by min/max per group."""
    n, k = w.shape
    if scheme.endswith("8w") or scheme == "int8wo":
        s = (w.abs().amax(1) / 127.5).clamp(min=1e-9)
        q = torch.clamp(torch.round(w / s[:, None]), -128, 127).to(torch.int8)
        return q, s.float(), None, -128, 127, k
    g = w.reshape(n, k // group, group)
    if scheme == "int4wo":  # asymmetric, integer zero points, values in [0, 15]
        lo, hi = g.amin(-1).clamp(max=0), g.amax(-1).clamp(min=0)
        s = ((hi - lo) / 15).clamp(min=1e-9)
        zp = torch.clamp(torch.round(-lo / s), 0, 15)
        q = torch.clamp(torch.round(g / s[..., None]) + zp[..., None], 0, 15)
        return q.reshape(n, k).to(torch.int8), s.float(), zp.to(torch.int32), 0, 15, group
    s = (g.abs().amax(-1) / 7.5).clamp(min=1e-9)  # 8da4w: symmetric [-8, 7]
    q = torch.clamp(torch.round(g / s[..., None]), -8, 7)
    return q.reshape(n, k).to(torch.int8), s.float(), None, -8, 7, group


class QLinear(torch.nn.Module):
    """One linear of ``scheme`` in reference (q/dq) form."""

    def __init__(self, linear: torch.nn.Linear, scheme: str, group: int = 32) -> None:
        super().__init__()
        q, s, zp, self.qmin, self.qmax, self.group = quantize_weight(
            linear.weight.detach(), scheme, group
        )
        self.scheme = scheme
        self.register_buffer("q", q)
        self.register_buffer("s", s)
        self.register_buffer("zp", zp)
        self.register_buffer("b", None if linear.bias is None else linear.bias.detach().clone())

    def weight(self) -> torch.Tensor:
        if self.group == self.q.shape[1]:
            return qd.dequantize_per_channel(
                self.q, self.s, self.zp, 0, self.qmin, self.qmax, torch.int8
            )
        return qd.dequantize_per_channel_group(
            self.q, self.s, self.zp, self.qmin, self.qmax, torch.int8, self.group, torch.float32
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scheme.startswith("8da"):
            s, zp = qd.choose_qparams_per_token_asymmetric(x, torch.int8)
            xq = qd.quantize_per_token(x, s, zp, -128, 127, torch.int8)
            x = qd.dequantize_per_token(xq, s, zp, -128, 127, torch.int8, torch.float32)
        return torch.nn.functional.linear(x, self.weight(), self.b)


def quantize_linears(model: torch.nn.Module, scheme: str, group: int = 32) -> torch.nn.Module:
    """A copy of ``model`` with every nn.Linear replaced by its QLinear."""
    import copy

    model = copy.deepcopy(model)
    for mod in list(model.modules()):
        for child_name, child in list(mod.named_children()):
            if isinstance(child, torch.nn.Linear):
                setattr(mod, child_name, QLinear(child, scheme, group))
    return model


def reference_program(model: torch.nn.Module, scheme: str, example, group: int = 32):
    """(exported reference GraphModule, eager quantized model) of ``model`` with its linears
    in ``scheme``."""
    q = quantize_linears(model.eval(), scheme, group)
    return torch.export.export(q, example).module(), q
