"""Typed views of the reference program around one op: what is quantized, with which qparams.

::

    x_q --> dequantize_per_tensor(x_q, s, z, lo, hi, dt) --+                     ActQ (inputs)
    w_q (get_attr) --> dequantize_per_channel(w_q, ...) ---+--> ANCHOR [-> relu]  WeightQ, post_ops
    bias (get_attr or None) -------------------------------+        |
                                                                    v
                                             quantize_per_tensor(., s, z, ...)  OutQ (output)

:func:`quantized_op` reads an anchor (``aten.linear``, ``aten.conv2d``, ``aten.add``, ...) into a
:class:`QuantizedOp`; a part that is not quantized is ``None`` and :meth:`QuantizedOp.float_parts`
says which, in words, for a report. Views only read the graph.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import torch
from torch.fx import GraphModule, Node

from pt2q.qdq.engine import constant_value
from pt2q.qdq.ops import is_dequantize, is_quantize, qd, qdq_name

__all__ = [
    "ActQ",
    "WeightQ",
    "OutQ",
    "QuantizedOp",
    "act_q",
    "weight_q",
    "quantized_op",
    "shape_of",
]

aten = torch.ops.aten
_LITERAL_DQ = qd.dequantize_per_tensor.default
_LITERAL_Q = qd.quantize_per_tensor.default


def _int(v: object) -> int:
    if not isinstance(v, int):
        raise TypeError(f"expected an int argument, found {v!r}")
    return v


def _scalar(v: object) -> float | Node:
    if isinstance(v, Node):
        return v
    if not isinstance(v, (int, float)):
        raise TypeError(f"expected a scale (number or node), found {v!r}")
    return float(v)


def _zp(v: object) -> int | Node:
    return v if isinstance(v, Node) else _int(v)


def _dtype(v: object) -> torch.dtype:
    if not isinstance(v, torch.dtype):
        raise TypeError(f"expected a torch.dtype argument, found {v!r}")
    return v


@dataclass(frozen=True)
class ActQ:
    """A dequantized activation ``dq(source, scale, zero_point, qmin, qmax, dtype)``.

    ``scale`` / ``zero_point`` are Python numbers for literal (static) qparams and graph nodes
    for run-time (dynamic) ones.
    """

    dq: Node
    source: Node
    scale: float | Node
    zero_point: int | Node
    qmin: int
    qmax: int
    dtype: torch.dtype

    @property
    def is_static(self) -> bool:
        return not isinstance(self.scale, Node)


@dataclass(frozen=True)
class WeightQ:
    """A dequantized weight: per tensor (``axis`` None, literal qparams), per channel
    (``axis``, scale / zero-point buffers) or per channel group (``group_size``: scale and zero
    points of shape (N, K // group_size); a None zero point means symmetric)."""

    dq: Node
    qweight: Node
    scale: float | Node
    zero_point: int | Node | None
    axis: int | None
    qmin: int
    qmax: int
    dtype: torch.dtype
    group_size: int | None = None

    def tensors(self, gm: GraphModule) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(integer weight, float64 scales, int64 zero points): one per output channel, or
        (N, K // group_size) for a grouped weight; ``NoMatch`` when the weight is not a
        constant."""
        w = constant_value(gm, self.qweight)
        if self.group_size is not None:
            scale = constant_value(gm, self.scale).double()
            if self.zero_point is None:
                return w, scale, torch.zeros(scale.shape, dtype=torch.int64)
            return w, scale, constant_value(gm, self.zero_point).to(torch.int64)
        if self.axis is None:
            n = w.shape[0]
            assert not isinstance(self.scale, Node) and isinstance(self.zero_point, int)
            scale = torch.full((n,), self.scale, dtype=torch.float64)
            return w, scale, torch.full((n,), self.zero_point, dtype=torch.int64)
        return (
            w,
            constant_value(gm, self.scale).double(),
            constant_value(gm, self.zero_point).to(torch.int64),
        )


@dataclass(frozen=True)
class OutQ:
    """The quantize closing an op: ``q(value, scale, zero_point, qmin, qmax, dtype)``."""

    q: Node
    scale: float | Node
    zero_point: int | Node
    qmin: int
    qmax: int
    dtype: torch.dtype


@dataclass(frozen=True)
class QuantizedOp:
    """One anchor op with its quantized inputs, weight, bias, post-ops and output quantize."""

    anchor: Node
    inputs: tuple[ActQ | None, ...]
    weight: WeightQ | None
    bias: Node | None
    output: OutQ | None
    post_ops: tuple[Node, ...]

    def float_parts(self) -> list[str]:
        """What keeps this op from being fully quantized, one phrase per part (empty: none)."""
        parts = []
        for i, act in enumerate(self.inputs):
            if act is None:
                parts.append(f"input {i} of {self.anchor.name} is float (no dequantize)")
        if self.output is None:
            parts.append(f"output of {self.anchor.name} is not quantized")
        return parts


def act_q(arg: object) -> ActQ | None:
    """``arg`` read as a dequantized per-tensor activation, or None."""
    if not isinstance(arg, Node) or qdq_name(arg) != "dequantize_per_tensor":
        return None
    source, scale, zp, qmin, qmax, dtype = arg.args[:6]
    assert isinstance(source, Node)
    return ActQ(arg, source, _scalar(scale), _zp(zp), _int(qmin), _int(qmax), _dtype(dtype))


def weight_q(arg: object) -> WeightQ | None:
    """``arg`` read as a dequantized weight (per tensor or per channel), or None."""
    if not isinstance(arg, Node) or not is_dequantize(arg):
        return None
    name = qdq_name(arg)
    if name == "dequantize_per_channel":
        w, scale, zp, axis, qmin, qmax, dtype = arg.args[:7]
        assert isinstance(w, Node)
        return WeightQ(
            arg, w, _scalar(scale), _zp(zp), _int(axis), _int(qmin), _int(qmax), _dtype(dtype)
        )
    if name == "dequantize_per_channel_group":
        w, scale, zp, qmin, qmax, dtype = arg.args[:6]
        group = arg.args[6] if len(arg.args) > 6 else arg.kwargs.get("group_size", 128)
        assert isinstance(w, Node) and isinstance(scale, Node)
        zero_point = zp if isinstance(zp, Node) else None
        return WeightQ(
            arg, w, scale, zero_point, 0, _int(qmin), _int(qmax), _dtype(dtype), _int(group)
        )
    if arg.target == _LITERAL_DQ:
        w, scale, zp, qmin, qmax, dtype = arg.args[:6]
        assert isinstance(w, Node)
        return WeightQ(arg, w, _scalar(scale), _zp(zp), None, _int(qmin), _int(qmax), _dtype(dtype))
    return None


def _out_q(node: Node, post_op_targets: Collection[object]) -> tuple[OutQ | None, tuple[Node, ...]]:
    post: list[Node] = []
    cur = node
    while len(cur.users) == 1:
        (user,) = cur.users
        if user.target in post_op_targets:
            post.append(user)
            cur = user
            continue
        if is_quantize(user) and user.target == _LITERAL_Q:
            _x, scale, zp, qmin, qmax, dtype = user.args[:6]
            out = OutQ(user, _scalar(scale), _zp(zp), _int(qmin), _int(qmax), _dtype(dtype))
            return out, tuple(post)
        break
    return None, tuple(post)


def quantized_op(
    anchor: Node, *, weight_arg: int | None = None, post_op_targets: Collection[object] = ()
) -> QuantizedOp:
    """The view of ``anchor``: its tensor inputs (``weight_arg``: the index of its weight, e.g.
    1 for linear/conv), its bias (the argument after the weight), post-ops among
    ``post_op_targets`` and the closing quantize."""
    inputs: list[ActQ | None] = []
    weight = None
    bias = None
    for i, arg in enumerate(anchor.args):
        if weight_arg is not None and i == weight_arg:
            weight = weight_q(arg)
            continue
        if weight_arg is not None and i == weight_arg + 1:
            bias = arg if isinstance(arg, Node) else None
            continue
        if isinstance(arg, Node):
            inputs.append(act_q(arg))
    output, post = _out_q(anchor, post_op_targets)
    return QuantizedOp(anchor, tuple(inputs), weight, bias, output, post)


def shape_of(node: Node) -> torch.Size | None:
    """The shape of ``node``'s value from ``meta["val"]``, looking through q/dq ops (convert
    inserts them without ``val``; they keep the shape)."""
    cur: object = node
    while isinstance(cur, Node):
        val = cur.meta.get("val")
        if isinstance(val, torch.Tensor):
            return val.shape
        if not (is_quantize(cur) or is_dequantize(cur)):
            return None
        cur = cur.args[0]
    return None
