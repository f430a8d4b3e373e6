"""Convert affine observers / fake-quantizers into ``quantized_decomposed`` q/dq ops.

The observer's granularity on the observed tensor's shape picks one emitter (``_EMITTERS``)::

    kind                 static (qparams from calibration)          dynamic (chosen at run time)
    per tensor           quantize_per_tensor(x, s, z, lo, hi, dt)   choose_qparams[_symmetric].tensor
                          -> dequantize_per_tensor                   -> quantize_per_tensor.tensor
                                                                    -> dequantize_per_tensor.tensor
    per channel (axis)   quantize_per_channel(x, S, Z, axis, ...)   --
                          -> dequantize_per_channel
    per channel group    quantize_per_channel_group(x, S, Z, lo,    --
      (2-D, (1, g))       hi, dt, g) -> dequantize_per_channel_group
                          (..., g, torch.float32)
    per token            --                                         choose_qparams_per_token_asymmetric
                                                                     (x, int8) -> (s, z)
                                                                    -> quantize_per_token(x, s, z,
                                                                       -128, 127, int8)
                                                                    -> dequantize_per_token(...,
                                                                       int8, torch.float32)

``S`` / ``Z`` are ``get_attr`` buffers: per channel (C,) float32 / int64; per group
(N, K // g) float32 / int32. Sub-byte targets keep their narrowed range in int8 / uint8
(int4: [-8, 7]). ``ZeroPointDomain.NONE`` writes zero zero points; ``FLOAT`` writes the
equivalent float zero point ``mid - zp / scale`` (per group; per channel on a 2-D tensor as one
group per row, since only the group op adds the zero point before rounding). Every consumer gets
its own dequantize. Anything else (PerBlock with 2-D blocks, groups on a 3-D tensor, a static
per-token activation) raises ``ValueError`` naming the node, the granularity and the shape.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.affine.block_size import get_block_size
from pt2q.affine.dynamic import DynamicKind, dynamic_kind
from pt2q.affine.ir_forms import StaticKind, static_kind
from pt2q.affine.mapping import MappingType, ZeroPointDomain
from pt2q.convert.qdq import _one_dq_per_user, _register_buffer
from pt2q.meta import copy_meta

__all__ = ["convert_affine_observer", "emit_per_channel_group", "ir_zero_point"]

qd = torch.ops.quantized_decomposed


def ir_zero_point(obs: Any, scale: torch.Tensor, zero_point: torch.Tensor | None) -> torch.Tensor:
    """The zero point the IR's ``round(x / s) + z`` form needs, as float or integer tensor."""
    if obs.zero_point_domain == ZeroPointDomain.NONE or zero_point is None:
        return torch.zeros_like(scale, dtype=torch.int64)
    if obs.zero_point_domain == ZeroPointDomain.FLOAT:
        mid = (obs.quant_max + obs.quant_min + 1) / 2
        return (mid - zero_point.float() / scale.float()).float()
    return zero_point.round().to(torch.int64)


def _static_qparams(obs: Any, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    scale, zero_point = obs.calculate_qparams()
    return scale.float(), ir_zero_point(obs, scale, zero_point)


def _per_tensor(model: GraphModule, node: Node, obs: Any, arg: int, where: str) -> Node:
    scale, zp = _static_qparams(obs, where)
    if zp.is_floating_point():
        raise ValueError(f"{where}: ZeroPointDomain.FLOAT needs per-channel or per-group qparams")
    args = (
        float(scale.reshape(-1)[0]),
        int(zp.reshape(-1)[0]),
        obs.quant_min,
        obs.quant_max,
        obs.dtype,
    )
    return _emit(
        model, node, qd.quantize_per_tensor.default, qd.dequantize_per_tensor.default, args, ()
    )


def _per_channel(model: GraphModule, node: Node, obs: Any, axis: int, where: str) -> Node:
    scale, zp = _static_qparams(obs, where)
    graph = model.graph
    with graph.inserting_before(node):
        s = graph.get_attr(_register_buffer(model, "_scale_", scale.reshape(-1)))
        z = graph.get_attr(_register_buffer(model, "_zero_point_", zp.reshape(-1)))
    args = (s, z, axis, obs.quant_min, obs.quant_max, obs.dtype)
    return _emit(
        model, node, qd.quantize_per_channel.default, qd.dequantize_per_channel.default, args, ()
    )


def _per_group(model: GraphModule, node: Node, obs: Any, group: int, where: str) -> Node:
    scale, zp = _static_qparams(obs, where)
    return emit_per_channel_group(
        model, node, scale, zp, obs.quant_min, obs.quant_max, obs.dtype, group
    )


def emit_per_channel_group(
    model: GraphModule,
    node: Node,
    scale: torch.Tensor,
    zero_point: torch.Tensor,
    quant_min: int,
    quant_max: int,
    dtype: torch.dtype,
    group: int,
) -> Node:
    """Emit ``quantize_per_channel_group`` -> one ``dequantize_per_channel_group`` per user of
    observer node ``node`` (not erased here). ``zero_point`` is in the IR's form (added to
    ``x / scale`` before rounding): integer ones are stored int32, float ones as they are. One
    group per row (``group`` = the row length) is exact per-row quantization with a float zero
    point, which ``quantize_per_channel`` cannot express."""
    zp = zero_point if zero_point.is_floating_point() else zero_point.to(torch.int32)
    graph = model.graph
    with graph.inserting_before(node):
        s = graph.get_attr(_register_buffer(model, "_scale_", scale.float()))
        z = graph.get_attr(_register_buffer(model, "_zero_point_", zp))
    args = (s, z, quant_min, quant_max, dtype, group)
    return _emit(
        model,
        node,
        qd.quantize_per_channel_group.default,
        qd.dequantize_per_channel_group.default,
        args,
        (torch.float32,),
    )


def _emit(
    model: GraphModule,
    node: Node,
    q_op: Any,
    dq_op: Any,
    args: tuple[Any, ...],
    dq_extra: tuple[Any, ...],
) -> Node:
    graph = model.graph
    with graph.inserting_before(node):
        q = graph.call_function(q_op, (node.args[0], *args))
    copy_meta(node, q)
    _one_dq_per_user(graph, node, q, dq_op, (*args, *dq_extra))
    return q


def _dynamic(model: GraphModule, node: Node, obs: Any, kind: DynamicKind) -> None:
    graph = model.graph
    x = node.args[0]
    symmetric = obs.mapping_type != MappingType.ASYMMETRIC
    if kind == DynamicKind.PER_TOKEN:
        choose: Any = (
            qd.choose_qparams_per_token.default
            if symmetric
            else qd.choose_qparams_per_token_asymmetric.default
        )
        choose_args: tuple[Any, ...] = (x, obs.dtype)
        q_op, dq_op = qd.quantize_per_token.default, qd.dequantize_per_token.default
        dq_extra: tuple[Any, ...] = (torch.float32,)
    else:
        choose = qd.choose_qparams_symmetric.tensor if symmetric else qd.choose_qparams.tensor
        eps = torch.finfo(torch.float32).eps if obs.eps is None else float(obs.eps)
        choose_args = (x, obs.quant_min, obs.quant_max, eps, obs.dtype)
        q_op, dq_op = qd.quantize_per_tensor.tensor, qd.dequantize_per_tensor.tensor
        dq_extra = ()
    with graph.inserting_before(node):
        qparams = graph.call_function(choose, choose_args)
        scale = graph.call_function(operator.getitem, (qparams, 0))
        zp = graph.call_function(operator.getitem, (qparams, 1))
        args = (scale, zp, obs.quant_min, obs.quant_max, obs.dtype)
        q = graph.call_function(q_op, (x, *args))
    for new in (qparams, scale, zp, q):
        copy_meta(node, new)
    _one_dq_per_user(graph, node, q, dq_op, (*args, *dq_extra))


_STATIC_EMITTERS: dict[StaticKind, Callable[[GraphModule, Node, Any, int, str], Node]] = {
    StaticKind.PER_TENSOR: _per_tensor,
    StaticKind.PER_CHANNEL: _per_channel,
    StaticKind.PER_GROUP: _per_group,
}


def convert_affine_observer(model: GraphModule, node: Node, obs: Any) -> None:
    """Replace the call of affine observer ``obs`` at ``node`` with q/dq ops (see module
    docstring) and erase ``node``."""
    _rewrite(model, node, obs)
    model.graph.erase_node(node)


def _rewrite(model: GraphModule, node: Node, obs: Any) -> None:
    x = node.args[0]
    where = f"convert_pt2e: affine observer '{node.target}' on '{getattr(x, 'name', x)}'"
    if obs.is_dynamic:
        kind = dynamic_kind(
            obs.granularity, obs.mapping_type, obs.dtype, obs.quant_min, obs.quant_max, where
        )
        _dynamic(model, node, obs, kind)
        return
    val = x.meta.get("val") if isinstance(x, Node) else None
    if val is None:
        raise ValueError(f"{where}: the observed node has no example value (meta['val'])")
    shape = tuple(int(s) for s in val.shape)
    block = get_block_size(shape, obs.granularity)
    static, param = static_kind(block, shape, where)
    if static == StaticKind.PER_CHANNEL and obs.zero_point_domain == ZeroPointDomain.FLOAT:
        # quantize_per_channel rounds before adding the zero point (then truncates a float
        # one); the group op adds it first: one group per row is the same per-row quantization.
        if len(shape) != 2 or param != 0 or shape[1] < 2:
            raise ValueError(
                f"{where}: ZeroPointDomain.FLOAT per channel needs a 2-D tensor with channel "
                f"axis 0 (it is emitted as one group per row), got shape {shape}, axis {param}"
            )
        static, param = StaticKind.PER_GROUP, shape[1]
    _STATIC_EMITTERS[static](model, node, obs, param, where)
