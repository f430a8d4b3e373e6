"""The ARM lowering's pattern table: one entry per anchor op, each a rewrite that either
returns the replacement node (and the variant it runs) or raises ``NoMatch`` with the reason.

| anchor                      | fuses | becomes                                  |
| --------------------------- | ----- | ---------------------------------------- |
| aten.linear                 | relu  | pt2q_arm.linear (packed GEMM)            |
| aten.linear, dynamic input  |       | pt2q_arm.linear_dynamic (dynamic.py)     |
| aten.conv2d (groups = 1..C) | relu  | pt2q_arm.conv2d (im2col + packed GEMM)   |
| aten.conv2d (depthwise)     | relu  | pt2q_arm.dwconv2d                        |
| aten.max_pool2d             |       | pt2q_arm.max_pool2d (same in/out qparams)|
| aten.avg_pool2d, adaptive   |       | pt2q_arm.avg_pool2d                      |
| aten.add.Tensor, mul.Tensor | relu  | pt2q_arm.add / pt2q_arm.mul              |
| quantize / dequantize       |       | pt2q_arm.quantize / dequantize           |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.fx import GraphModule, Node

from pt2q.lowering.arm.dynamic import dynamic_linear, is_dynamic_input
from pt2q.lowering.arm.match import QDQ, NoMatch, act_input, output_q, weight_input
from pt2q.lowering.arm.ops import select_variant
from pt2q.meta import QUANTIZED_OUTPUT_KEY

__all__ = ["Rewrite", "PATTERNS"]

aten = torch.ops.aten
arm = torch.ops.pt2q_arm  # resolved lazily, after load_ops()


@dataclass(frozen=True)
class Rewrite:
    """One pattern: the anchor op, what it may fuse (for the report) and its rewrite."""

    anchor: object
    fuses: str
    rewrite: Callable[[GraphModule, Node], tuple[Node, Node, str]]


def _arg(node: Node, i: int, name: str, default: object) -> object:
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(name, default)


def _pair(v: object) -> list[int]:
    v = list(v) if isinstance(v, (list, tuple)) else [v]  # type: ignore[arg-type]
    return [int(v[0]), int(v[-1])] if v else []


def _const(gm: GraphModule, node: Node, name: str, value: torch.Tensor) -> Node:
    """A new buffer on ``gm`` and a get_attr node for it, placed before ``node``."""
    attr = f"_pt2q_arm_{name}"
    gm.register_buffer(attr, value)
    with gm.graph.inserting_before(node):
        return gm.graph.get_attr(attr)


def _bias_scale(gm, w2d: torch.Tensor, wq, bias_node, x, y) -> tuple[torch.Tensor, torch.Tensor]:
    """int32 bias with the input zero point folded in, fp32 requantization scales."""
    acc_scale = x.scale * wq.scale  # float64, (N,)
    b = torch.zeros_like(acc_scale)
    if isinstance(bias_node, Node):
        if bias_node.target in (QDQ["dq"], QDQ["dq_ch"]):
            raise NoMatch(f"bias {bias_node.name} is quantized; expected a float bias")
        from pt2q.lowering.arm.match import get_attr_value

        b = get_attr_value(gm, bias_node).double()
    bias = torch.round(b / acc_scale) - x.zp * w2d.to(torch.int64).sum(dim=1).double()
    return bias.to(torch.int32), (acc_scale / y.scale).float()


def _replace(anchor: Node, q: Node, target: object, args: tuple) -> Node:
    """Insert ``target(*args)`` after ``q`` and hand it q's users; it keeps the anchor's shape
    (meta["val"]) so later patterns can read shapes through it."""
    with q.graph.inserting_after(q):
        new = q.graph.call_function(target, args)
    new.meta = dict(q.meta)
    if "val" in anchor.meta:
        new.meta["val"] = anchor.meta["val"]
    # the numeric debug handle of the pattern's last float op (conv, or its fused relu), so the
    # debugger compares the kernel against that op's float/reference output
    last = q.args[0]
    if isinstance(last, Node) and "custom" in last.meta:
        new.meta["custom"] = dict(last.meta["custom"])
    new.meta[QUANTIZED_OUTPUT_KEY] = (float(q.args[1]), int(q.args[2]))  # q(x, scale, zp, ...)
    q.replace_all_uses_with(new)
    return new


def _linear(gm: GraphModule, node: Node) -> tuple[Node, Node, str]:
    if is_dynamic_input(node.args[0]):
        return dynamic_linear(gm, node)
    x = act_input(node.args[0])
    w_node = node.args[1]
    n = -1  # per-tensor weights: taken from the weight itself
    wq = weight_input(gm, w_node, n)
    y, q, _ = output_q(node)
    bias, scale = _bias_scale(gm, wq.value, wq, _arg(node, 2, "bias", None), x, y)
    v = select_variant("qs8-gemm", n=wq.value.shape[0])
    name = f"{v.family}/{v.variant}"
    packed = _const(gm, q, f"{node.name}_packed", arm.pack_gemm(wq.value, bias, scale, name))
    new = _replace(
        node, q, arm.linear.default, (x.node, packed, wq.value.shape[0], y.zp, y.qmin, y.qmax, name)
    )
    return new, q, name


def _conv2d(gm: GraphModule, node: Node) -> tuple[Node, Node, str]:
    x = act_input(node.args[0])
    padding = _arg(node, 4, "padding", [0, 0])
    if isinstance(padding, str):
        raise NoMatch(f"{node.name}: padding={padding!r}; the kernels take explicit padding")
    stride, dilation = (
        _pair(_arg(node, 3, "stride", [1, 1])),
        _pair(_arg(node, 5, "dilation", [1, 1])),
    )
    groups = int(_arg(node, 6, "groups", 1))
    wq = weight_input(gm, node.args[1], -1)
    w = wq.value  # (O, I/g, kh, kw)
    if w.dim() != 4:
        raise NoMatch(f"{node.name}: weight has {w.dim()} dims, expected a 2-D conv (4)")
    y, q, _ = output_q(node)
    o, cin_g, kh, kw = w.shape
    kernel, padding = [kh, kw], _pair(padding)
    w_ohwi = w.permute(0, 2, 3, 1).reshape(o, -1)  # rows: (kh, kw, cin_g) like im2col
    bias, scale = _bias_scale(gm, w_ohwi, wq, _arg(node, 2, "bias", None), x, y)
    if groups > 1 and cin_g == 1 and o == groups:  # depthwise, multiplier 1
        v = select_variant("qs8-dwconv")
        name = f"{v.family}/{v.variant}"
        packed = arm.pack_dwconv(w.reshape(o, kh * kw).t().contiguous(), bias, scale, name)
        p = _const(gm, q, f"{node.name}_packed", packed)
        args = (x.node, p, kernel, stride, padding, dilation, x.zp, y.zp, y.qmin, y.qmax, name)
        return _replace(node, q, arm.dwconv2d.default, args), q, name
    og = o // groups
    v = select_variant("qs8-gemm", n=og)
    name = f"{v.family}/{v.variant}"
    blocks = [
        arm.pack_gemm(
            w_ohwi[g * og : (g + 1) * og],
            bias[g * og : (g + 1) * og],
            scale[g * og : (g + 1) * og],
            name,
        )
        for g in range(groups)
    ]
    p = _const(gm, q, f"{node.name}_packed", torch.cat(blocks))
    args = (
        x.node,
        p,
        o,
        kernel,
        stride,
        padding,
        dilation,
        groups,
        x.zp,
        y.zp,
        y.qmin,
        y.qmax,
        name,
    )
    return _replace(node, q, arm.conv2d.default, args), q, name


def _same_qparams(x, y, node: Node) -> None:
    if abs(x.scale - y.scale) > 1e-12 * x.scale or x.zp != y.zp:
        raise NoMatch(
            f"{node.name}: input qparams ({x.scale}, {x.zp}) != output ({y.scale}, {y.zp})"
        )


def _max_pool2d(gm: GraphModule, node: Node) -> tuple[Node, Node, str]:
    x = act_input(node.args[0])
    if _arg(node, 5, "ceil_mode", False):
        raise NoMatch(f"{node.name}: ceil_mode=True is not supported")
    kernel = _pair(node.args[1])
    stride = _pair(_arg(node, 2, "stride", [])) or kernel
    padding, dilation = _pair(_arg(node, 3, "padding", 0)), _pair(_arg(node, 4, "dilation", 1))
    y, q, relu = output_q(node)
    _same_qparams(x, y, node)
    args = (x.node, kernel, stride, padding, dilation, y.qmin, y.qmax, "auto")
    return _replace(node, q, arm.max_pool2d.default, args), q, "s8-maxpool/auto"


def _avg(gm, node, x, kernel, stride, padding) -> tuple[Node, Node, str]:
    y, q, _ = output_q(node)
    scale = x.scale / (y.scale * kernel[0] * kernel[1])
    args = (x.node, kernel, stride, padding, x.zp, scale, y.zp, y.qmin, y.qmax, "auto")
    return _replace(node, q, arm.avg_pool2d.default, args), q, "qs8-avgpool/auto"


def _avg_pool2d(gm: GraphModule, node: Node) -> tuple[Node, Node, str]:
    x = act_input(node.args[0])
    kernel = _pair(node.args[1])
    stride = _pair(_arg(node, 2, "stride", [])) or kernel
    padding = _pair(_arg(node, 3, "padding", 0))
    if _arg(node, 4, "ceil_mode", False) or _arg(node, 6, "divisor_override", None) is not None:
        raise NoMatch(f"{node.name}: ceil_mode / divisor_override are not supported")
    if not _arg(node, 5, "count_include_pad", True) and any(padding):
        raise NoMatch(f"{node.name}: count_include_pad=False with padding is not supported")
    return _avg(gm, node, x, kernel, stride, padding)


def _adaptive_avg_pool2d(gm: GraphModule, node: Node) -> tuple[Node, Node, str]:
    x = act_input(node.args[0])
    src = node.args[0]
    while "val" not in src.meta and src.target in (QDQ["q"], QDQ["dq"]):
        src = src.args[0]  # q/dq inserted by convert carry no meta["val"]; same shape
    if "val" not in src.meta:
        raise NoMatch(f"{node.name}: input shape unknown (no meta['val'])")
    h, w = (int(s) for s in src.meta["val"].shape[-2:])
    oh, ow = _pair(node.args[1])
    if h % oh or w % ow:
        raise NoMatch(f"{node.name}: input {h}x{w} is not a multiple of output {oh}x{ow}")
    kernel = [h // oh, w // ow]
    return _avg(gm, node, x, kernel, kernel, [0, 0])


def _binary(gm: GraphModule, node: Node) -> tuple[Node, Node, str]:
    if node.kwargs.get("alpha", 1) != 1:
        raise NoMatch(f"{node.name}: alpha != 1")
    a, b = act_input(node.args[0]), act_input(node.args[1])
    y, q, _ = output_q(node)
    if node.target == aten.add.Tensor:
        args = (
            a.node,
            b.node,
            a.zp,
            b.zp,
            a.scale / y.scale,
            b.scale / y.scale,
            y.zp,
            y.qmin,
            y.qmax,
            "auto",
        )
        return _replace(node, q, arm.add.default, args), q, "qs8-vadd/auto"
    args = (a.node, b.node, a.zp, b.zp, a.scale * b.scale / y.scale, y.zp, y.qmin, y.qmax, "auto")
    return _replace(node, q, arm.mul.default, args), q, "qs8-vmul/auto"


PATTERNS: tuple[Rewrite, ...] = (
    Rewrite(aten.linear.default, "relu", _linear),
    Rewrite(aten.conv2d.default, "relu", _conv2d),
    Rewrite(aten.max_pool2d.default, "", _max_pool2d),
    Rewrite(aten.avg_pool2d.default, "", _avg_pool2d),
    Rewrite(aten.adaptive_avg_pool2d.default, "", _adaptive_avg_pool2d),
    Rewrite(aten.add.Tensor, "relu", _binary),
    Rewrite(aten.mul.Tensor, "relu", _binary),
)
