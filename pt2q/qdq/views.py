"""Typed views of the reference program around one op: what is quantized, with which qparams.

::

    x_q --> dequantize_per_tensor(x_q, s, z, lo, hi, dt) --+                     ActQ (inputs)
    w_q (get_attr) --> dequantize_per_channel(w_q, ...) ---+--> ANCHOR [-> relu]  WeightQ, post_ops
    bias (get_attr or None) -------------------------------+        |
                                                                    v
                                             quantize_per_tensor(., s, z, ...)  OutQ (output)

LLM linears read their activation as a :class:`TokenQ` (quantized per token at run time)::

    x -> choose_qparams_per_token_asymmetric(x, dt) -> getitem 0, 1: (s, z)
    x -> quantize_per_token(x, s, z, lo, hi, dt) -> dequantize_per_token(., s, z, ...)  TokenQ

and their weight as a per-channel or per-group :class:`WeightQ`.

:func:`quantized_op` reads an anchor (``aten.linear``, ``aten.conv2d``, ``aten.add``, ...) into a
:class:`QuantizedOp`; a part that is not quantized is ``None`` and :meth:`QuantizedOp.float_parts`
says which, in words, for a report. Views only read the graph.
"""

from __future__ import annotations

import operator
from collections.abc import Collection
from dataclasses import dataclass

import torch
from torch.fx import GraphModule, Node

from pt2q.qdq.engine import NoMatch, constant_value
from pt2q.qdq.ops import is_dequantize, is_quantize, qd, qdq_name

__all__ = [
    "ActQ",
    "WeightQ",
    "OutQ",
    "TokenQ",
    "QuantizedOp",
    "act_q",
    "weight_q",
    "out_q",
    "token_q",
    "quantized_op",
    "shape_of",
]

aten = torch.ops.aten
_LITERAL_DQ = qd.dequantize_per_tensor.default


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


def _arg(node: Node, i: int, name: str, default: object) -> object:
    """Argument ``i`` of ``node``, passed by position or as keyword ``name``."""
    return node.args[i] if len(node.args) > i else node.kwargs.get(name, default)


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

    @property
    def float_input(self) -> Node | None:
        """The float node quantized into ``source`` (``x`` of ``x -> q -> dq``), or None when
        ``source`` is not a quantize of a graph node (an int8 input or constant)."""
        if not is_quantize(self.source) or not isinstance(self.source.args[0], Node):
            return None
        return self.source.args[0]


@dataclass(frozen=True)
class WeightQ:
    """A dequantized weight: per tensor (``axis`` None, literal qparams), per channel
    (``axis``, scale / zero-point buffers) or per channel group (``group_size``: scale and zero
    points of shape (N, K // group_size), ``axis`` 0). A None zero point means zeros;
    ``out_dtype`` is the float dtype the dequantize produces."""

    dq: Node
    qweight: Node
    scale: float | Node
    zero_point: int | Node | None
    axis: int | None
    qmin: int
    qmax: int
    dtype: torch.dtype
    group_size: int | None = None
    out_dtype: torch.dtype = torch.float32

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
        scale = constant_value(gm, self.scale).double()
        if self.zero_point is None:
            return w, scale, torch.zeros(scale.shape, dtype=torch.int64)
        return w, scale, constant_value(gm, self.zero_point).to(torch.int64)


@dataclass(frozen=True)
class OutQ:
    """A per-tensor quantize ``q(value, scale, zero_point, qmin, qmax, dtype)``, e.g. the one
    closing an op; ``scale`` / ``zero_point`` as in :class:`ActQ`."""

    q: Node
    value: Node
    scale: float | Node
    zero_point: int | Node
    qmin: int
    qmax: int
    dtype: torch.dtype

    @property
    def is_static(self) -> bool:
        return not isinstance(self.scale, Node)


@dataclass(frozen=True)
class TokenQ:
    """An activation quantized per token at run time (the ``8da*`` LLM schemes): the float
    ``source`` through ``choose`` (``choose_qparams_per_token_asymmetric``), ``q``
    (``quantize_per_token``; ``scale`` / ``zero_point`` its run-time qparams, ``scale`` a
    ``getitem`` of ``choose``) and ``dq`` (``dequantize_per_token``)."""

    dq: Node
    q: Node
    choose: Node
    source: Node
    scale: Node
    zero_point: Node
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
    """``arg`` read as a dequantized weight (per tensor, per channel or per channel group), or
    None."""
    if not isinstance(arg, Node):
        return None
    name = qdq_name(arg)
    if name == "dequantize_per_channel":
        w, scale, zp, axis, qmin, qmax, dtype = arg.args[:7]
        out = _arg(arg, 7, "out_dtype", None)  # None: float32
        assert isinstance(w, Node)
        zero_point = None if zp is None else _zp(zp)
        return WeightQ(
            arg,
            w,
            _scalar(scale),
            zero_point,
            _int(axis),
            _int(qmin),
            _int(qmax),
            _dtype(dtype),
            out_dtype=torch.float32 if out is None else _dtype(out),
        )
    if name == "dequantize_per_channel_group":
        w, scale, zp, qmin, qmax, dtype = arg.args[:6]
        group = _int(_arg(arg, 6, "group_size", 128))
        out = _dtype(_arg(arg, 7, "output_dtype", torch.float32))
        assert isinstance(w, Node) and isinstance(scale, Node)
        zero_point = zp if isinstance(zp, Node) else None
        return WeightQ(
            arg, w, scale, zero_point, 0, _int(qmin), _int(qmax), _dtype(dtype), group, out
        )
    if arg.target == _LITERAL_DQ:
        w, scale, zp, qmin, qmax, dtype = arg.args[:6]
        assert isinstance(w, Node)
        return WeightQ(arg, w, _scalar(scale), _zp(zp), None, _int(qmin), _int(qmax), _dtype(dtype))
    return None


def out_q(arg: object) -> OutQ | None:
    """``arg`` read as a per-tensor quantize (literal or run-time qparams), or None (also for
    ``.tensor2``, whose range is computed at run time)."""
    if not isinstance(arg, Node) or qdq_name(arg) != "quantize_per_tensor" or len(arg.args) < 6:
        return None
    value, scale, zp, qmin, qmax, dtype = arg.args[:6]
    if not isinstance(qmin, int) or not isinstance(qmax, int):
        return None
    assert isinstance(value, Node)
    return OutQ(arg, value, _scalar(scale), _zp(zp), _int(qmin), _int(qmax), _dtype(dtype))


def token_q(arg: object) -> TokenQ | None:
    """``arg`` read as a per-token dynamically quantized activation; None when ``arg`` is not a
    ``dequantize_per_token``, ``NoMatch`` saying why when it is one but what feeds it is not
    ``quantize_per_token`` with qparams from ``choose_qparams_per_token_asymmetric``."""
    if not isinstance(arg, Node) or qdq_name(arg) != "dequantize_per_token":
        return None
    q = arg.args[0]
    if not isinstance(q, Node) or qdq_name(q) != "quantize_per_token":
        raise NoMatch(f"{arg.name} does not dequantize a quantize_per_token")
    source, scale, zp, qmin, qmax, dtype = q.args[:6]
    choose = scale.args[0] if isinstance(scale, Node) and scale.target is operator.getitem else None
    if not (
        isinstance(choose, Node)
        and qdq_name(choose) == "choose_qparams_per_token_asymmetric"
        and isinstance(scale, Node)
        and isinstance(zp, Node)
        and isinstance(source, Node)
    ):
        raise NoMatch(f"{q.name}'s qparams do not come from choose_qparams_per_token_asymmetric")
    return TokenQ(arg, q, choose, source, scale, zp, _int(qmin), _int(qmax), _dtype(dtype))


def _out_q(node: Node, post_op_targets: Collection[object]) -> tuple[OutQ | None, tuple[Node, ...]]:
    post: list[Node] = []
    cur = node
    while len(cur.users) == 1:
        (user,) = cur.users
        if user.target in post_op_targets:
            post.append(user)
            cur = user
            continue
        out = out_q(user)
        if out is not None and out.is_static:
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
