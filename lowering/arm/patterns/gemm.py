"""Linear and conv2d (dense, grouped, depthwise) onto the packed-GEMM and dwconv kernels.

::

    dq(x_i8) ---------------------+
    dq(w_i8 constant) ------------+--> linear / conv2d [-> relu] --> q --> y_i8
    bias (float constant or None) +
        ==>  pt2q_arm.linear / conv2d / dwconv2d(x_i8, packed(w, bias - zx*sum(w), sx*sw/sy), ...)
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from pt2q.lowering.arm.ops import select_variant
from pt2q.lowering.arm.rewrite import ArmOptions, ArmPattern, act, gemm_epilogue, out, pair, weight
from pt2q.qdq import searches
from pt2q.qdq.engine import NoMatch, Rewrite, Value

__all__ = ["PATTERNS"]


def _linear(r: Rewrite, options: ArmOptions) -> Value:
    arm = torch.ops.pt2q_arm
    x, y = act(r), out(r)
    w, w_scale = weight(r)
    bias, scale = gemm_epilogue(r, w, w_scale, x, y)
    v = select_variant("qs8-gemm", n=w.shape[0])
    r.kernel = f"{v.family}/{v.variant}"
    packed = r.constant(
        f"_pt2q_arm_{r.match.anchor.name}_packed", arm.pack_gemm(w, bias, scale, r.kernel)
    )
    return arm.linear.default(r["x"], packed, w.shape[0], y.zp, y.qmin, y.qmax, r.kernel)


def _conv2d(r: Rewrite, options: ArmOptions) -> Value:
    arm = torch.ops.pt2q_arm
    name = r.match.anchor.name
    if isinstance(r["padding"], str):
        raise NoMatch(f"{name}: padding={r['padding']!r}; the kernels take explicit padding")
    x, y = act(r), out(r)
    w, w_scale = weight(r)  # (O, I/g, kh, kw)
    if w.dim() != 4:
        raise NoMatch(f"{name}: weight has {w.dim()} dims, expected a 2-D conv (4)")
    o, cin_g, kh, kw = w.shape
    groups = int(r["groups"])
    kernel, stride = [kh, kw], pair(r["stride"])
    padding, dilation = pair(r["padding"]), pair(r["dilation"])
    w_ohwi = w.permute(0, 2, 3, 1).reshape(o, -1)  # rows: (kh, kw, cin_g) like im2col
    bias, scale = gemm_epilogue(r, w_ohwi, w_scale, x, y)
    attr = f"_pt2q_arm_{name}_packed"
    if groups > 1 and cin_g == 1 and o == groups:  # depthwise, multiplier 1
        v = select_variant("qs8-dwconv")
        r.kernel = f"{v.family}/{v.variant}"
        taps = w.reshape(o, kh * kw).t().contiguous()  # (taps, C)
        packed = r.constant(attr, arm.pack_dwconv(taps, bias, scale, r.kernel))
        return arm.dwconv2d.default(
            r["x"], packed, kernel, stride, padding, dilation, x.zp, y.zp, y.qmin, y.qmax, r.kernel
        )
    og = o // groups
    v = select_variant("qs8-gemm", n=og)
    r.kernel = f"{v.family}/{v.variant}"
    blocks = [
        arm.pack_gemm(w_ohwi[g * og : (g + 1) * og], bias[g * og : (g + 1) * og],
                      scale[g * og : (g + 1) * og], r.kernel)
        for g in range(groups)
    ]  # fmt: skip
    packed = r.constant(attr, torch.cat(blocks))
    return arm.conv2d.default(
        r["x"], packed, o, kernel, stride, padding, dilation, groups,
        x.zp, y.zp, y.qmin, y.qmax, r.kernel,
    )  # fmt: skip


def _entries(op: str, replace: Callable[[Rewrite, ArmOptions], Value]) -> list[ArmPattern]:
    return [
        ArmPattern(
            f"{op}{'_relu' if relu else ''}_{'pc' if pc else 'pt'}",
            searches.weighted(op, per_channel=pc, relu=relu),
            replace,
        )
        for relu in (True, False)
        for pc in (True, False)
    ]


PATTERNS: list[ArmPattern] = [
    *_entries("linear", _linear),  # dq x, dq w -> linear [-> relu] -> q  ==>  pt2q_arm.linear
    *_entries("conv2d", _conv2d),  # dq x, dq w -> conv2d [-> relu] -> q  ==>  conv2d / dwconv2d
]
