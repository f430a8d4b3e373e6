"""Standalone int8 quantize / dequantize with literal qparams onto the NEON conversion kernels
(what is left after the op patterns: model inputs and outputs, around float ops)."""

from __future__ import annotations

import torch

from pt2q.lowering.arm.rewrite import ArmOptions, ArmPattern
from pt2q.qdq import searches
from pt2q.qdq.engine import NoMatch, Rewrite, Value

__all__ = ["PATTERNS"]


def _int8(r: Rewrite) -> None:
    if r["dt"] != torch.int8:
        raise NoMatch(f"{r.match.root.name}: dtype {r['dt']}; the conversion kernels take int8")


def _quantize(r: Rewrite, options: ArmOptions) -> Value:
    _int8(r)
    r.kernel = "f32-qs8-vcvt/auto"
    inv_scale = 1.0 / float(r["s"])
    return torch.ops.pt2q_arm.quantize.default(
        r["x"], inv_scale, int(r["z"]), int(r["lo"]), int(r["hi"]), "auto"
    )


def _dequantize(r: Rewrite, options: ArmOptions) -> Value:
    _int8(r)
    r.kernel = "qs8-f32-vcvt/auto"
    return torch.ops.pt2q_arm.dequantize.default(r["x"], int(r["z"]), float(r["s"]), "auto")


PATTERNS: list[ArmPattern] = [
    ArmPattern("quantize", searches.q_per_tensor, _quantize),  # q(x) ==> pt2q_arm.quantize
    ArmPattern("dequantize", searches.dq_per_tensor, _dequantize),  # dq(x) ==> .dequantize
]
