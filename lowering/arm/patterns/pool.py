"""Max / average pooling on int8 NHWC data.

::

    dq(x_i8) -> max_pool2d [-> relu] -> q  ==>  pt2q_arm.max_pool2d   (same in/out qparams)
    dq(x_i8) -> avg_pool2d / adaptive_avg_pool2d (whole windows) [-> relu] -> q
                                           ==>  pt2q_arm.avg_pool2d   (requantizing)
"""

from __future__ import annotations

import torch

from pt2q.lowering.arm.rewrite import ArmOptions, ArmPattern, QParams, act, out, pair
from pt2q.qdq import searches
from pt2q.qdq.engine import NoMatch, Rewrite, Value
from pt2q.qdq.ops import qd
from pt2q.qdq.views import shape_of

__all__ = ["PATTERNS"]

aten = torch.ops.aten


def _avg_pool2d_search(relu: bool) -> searches.Search:
    def search(
        x, xs, xz, xlo, xhi, xdt, kernel, stride, padding, ceil, include_pad, divisor,
        os, oz, olo, ohi, odt,
    ):  # fmt: skip
        xf = qd.dequantize_per_tensor.default(x, xs, xz, xlo, xhi, xdt)
        y = aten.avg_pool2d.default(xf, kernel, stride, padding, ceil, include_pad, divisor)
        if relu:
            y = aten.relu.default(y)
        return qd.quantize_per_tensor.default(y, os, oz, olo, ohi, odt)

    return search


def _adaptive_avg_pool2d_search(relu: bool) -> searches.Search:
    def search(x, xs, xz, xlo, xhi, xdt, size, os, oz, olo, ohi, odt):
        xf = qd.dequantize_per_tensor.default(x, xs, xz, xlo, xhi, xdt)
        y = aten.adaptive_avg_pool2d.default(xf, size)
        if relu:
            y = aten.relu.default(y)
        return qd.quantize_per_tensor.default(y, os, oz, olo, ohi, odt)

    return search


def _max_pool2d(r: Rewrite, options: ArmOptions) -> Value:
    name = r.match.anchor.name
    x, y = act(r), out(r)
    if r["ceil"]:
        raise NoMatch(f"{name}: ceil_mode=True is not supported")
    if abs(x.scale - y.scale) > 1e-12 * x.scale or x.zp != y.zp:
        raise NoMatch(f"{name}: input qparams ({x.scale}, {x.zp}) != output ({y.scale}, {y.zp})")
    kernel = pair(r["kernel"])
    stride = pair(r["stride"]) or kernel
    r.kernel = "s8-maxpool/auto"
    return torch.ops.pt2q_arm.max_pool2d.default(
        r["x"], kernel, stride, pair(r["padding"]), pair(r["dilation"]), y.qmin, y.qmax, "auto"
    )


def _avg(r: Rewrite, x: QParams, kernel: list[int], stride: list[int], padding: list[int]) -> Value:
    y = out(r)
    scale = x.scale / (y.scale * kernel[0] * kernel[1])
    r.kernel = "qs8-avgpool/auto"
    return torch.ops.pt2q_arm.avg_pool2d.default(
        r["x"], kernel, stride, padding, x.zp, scale, y.zp, y.qmin, y.qmax, "auto"
    )


def _avg_pool2d(r: Rewrite, options: ArmOptions) -> Value:
    name = r.match.anchor.name
    x = act(r)
    kernel = pair(r["kernel"])
    stride = pair(r["stride"]) or kernel
    padding = pair(r["padding"])
    if r["ceil"] or r["divisor"] is not None:
        raise NoMatch(f"{name}: ceil_mode / divisor_override are not supported")
    if not r["include_pad"] and any(padding):
        raise NoMatch(f"{name}: count_include_pad=False with padding is not supported")
    return _avg(r, x, kernel, stride, padding)


def _adaptive_avg_pool2d(r: Rewrite, options: ArmOptions) -> Value:
    name = r.match.anchor.name
    x = act(r)
    shape = shape_of(r.node("x"))
    if shape is None:
        raise NoMatch(f"{name}: input shape unknown (no meta['val'])")
    h, w = (int(s) for s in shape[-2:])
    oh, ow = pair(r["size"])
    if h % oh or w % ow:
        raise NoMatch(f"{name}: input {h}x{w} is not a multiple of output {oh}x{ow}")
    kernel = [h // oh, w // ow]
    return _avg(r, x, kernel, kernel, [0, 0])


PATTERNS: list[ArmPattern] = [
    # dq -> max_pool2d [-> relu] -> q  ==>  pt2q_arm.max_pool2d
    ArmPattern("max_pool2d_relu", searches.max_pool2d(relu=True), _max_pool2d),
    ArmPattern("max_pool2d", searches.max_pool2d(relu=False), _max_pool2d),
    # dq -> avg_pool2d [-> relu] -> q  ==>  pt2q_arm.avg_pool2d
    ArmPattern("avg_pool2d_relu", _avg_pool2d_search(relu=True), _avg_pool2d),
    ArmPattern("avg_pool2d", _avg_pool2d_search(relu=False), _avg_pool2d),
    # dq -> adaptive_avg_pool2d [-> relu] -> q  ==>  pt2q_arm.avg_pool2d (whole windows)
    ArmPattern("adaptive_avg_pool2d_relu", _adaptive_avg_pool2d_search(True), _adaptive_avg_pool2d),
    ArmPattern("adaptive_avg_pool2d", _adaptive_avg_pool2d_search(False), _adaptive_avg_pool2d),
]
