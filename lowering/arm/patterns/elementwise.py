"""Element-wise add and mul of two int8 tensors (broadcasting).

::

    dq(a_i8), dq(b_i8) -> add.Tensor [-> relu] -> q  ==>  pt2q_arm.add(a, b, za, zb, sa/sy, sb/sy)
    dq(a_i8), dq(b_i8) -> mul.Tensor [-> relu] -> q  ==>  pt2q_arm.mul(a, b, za, zb, sa*sb/sy)
"""

from __future__ import annotations

import torch

from pt2q.lowering.arm.rewrite import ArmOptions, ArmPattern, act, out
from pt2q.qdq import searches
from pt2q.qdq.engine import NoMatch, Rewrite, Value

__all__ = ["PATTERNS"]


def _add(r: Rewrite, options: ArmOptions) -> Value:
    if r.match.anchor.kwargs.get("alpha", 1) != 1:
        raise NoMatch(f"{r.match.anchor.name}: alpha != 1")
    a, b, y = act(r, "a"), act(r, "b"), out(r)
    r.kernel = "qs8-vadd/auto"
    return torch.ops.pt2q_arm.add.default(
        r["a"], r["b"], a.zp, b.zp, a.scale / y.scale, b.scale / y.scale,
        y.zp, y.qmin, y.qmax, "auto",
    )  # fmt: skip


def _mul(r: Rewrite, options: ArmOptions) -> Value:
    a, b, y = act(r, "a"), act(r, "b"), out(r)
    r.kernel = "qs8-vmul/auto"
    return torch.ops.pt2q_arm.mul.default(
        r["a"], r["b"], a.zp, b.zp, a.scale * b.scale / y.scale, y.zp, y.qmin, y.qmax, "auto"
    )


PATTERNS: list[ArmPattern] = [
    ArmPattern("add_relu", searches.binary("add", relu=True), _add),  # ... -> add -> relu -> q
    ArmPattern("add", searches.binary("add", relu=False), _add),  # dq, dq -> add -> q
    ArmPattern("mul_relu", searches.binary("mul", relu=True), _mul),  # ... -> mul -> relu -> q
    ArmPattern("mul", searches.binary("mul", relu=False), _mul),  # dq, dq -> mul -> q
]
