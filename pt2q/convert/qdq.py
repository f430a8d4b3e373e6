"""Replace each observer call with ``quantized_decomposed`` quantize/dequantize ops.

Static per tensor (scale / zero point written as literals, one dequantize per consumer)::

    x -> obs -> a, b     ==>   x -> quantize_per_tensor -> dequantize_per_tensor -> a
                                                       \\-> dequantize_per_tensor -> b

Static per channel: scale / zero point tensors become ``get_attr`` buffers and the ops are
``quantize_per_channel`` / ``dequantize_per_channel``; ``per_channel_affine_float_qparams``
(embedding tables) is emitted as ``quantize_per_channel_group`` with one group per row, the IR
form that adds a float zero point before rounding. Dynamic (``is_dynamic``)::

    x -> choose_qparams.tensor -> (scale, zp) -> quantize_per_tensor.tensor -> dequantize.tensor

float16 / bfloat16: a ``convert_element_type.no_fuse`` round trip. An observer with its own
``convert(model, node)`` method rewrites its node itself.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.meta import copy_meta

__all__ = ["replace_observers_with_qdq", "observer_of"]

qd = torch.ops.quantized_decomposed

_PER_CHANNEL = (
    torch.per_channel_affine,
    torch.per_channel_symmetric,
    torch.per_channel_affine_float_qparams,
)
_SYMMETRIC = (torch.per_tensor_symmetric, torch.per_channel_symmetric)
_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32)


def observer_of(model: GraphModule, node: Node) -> torch.nn.Module | None:
    """The observer/fake-quant module a call_module node calls, or None for other nodes."""
    if node.op != "call_module" or not isinstance(node.target, str):
        return None
    from pt2q.prepare.insert import OBSERVER_PREFIX

    if not node.target.startswith(OBSERVER_PREFIX):
        return None
    return model.get_submodule(node.target)


def _register_buffer(model: GraphModule, prefix: str, value: torch.Tensor) -> str:
    i = 0
    while hasattr(model, f"{prefix}{i}"):
        i += 1
    name = f"{prefix}{i}"
    model.register_buffer(name, value.detach().clone())
    return name


def _one_dq_per_user(
    graph: torch.fx.Graph, obs_node: Node, q_node: Node, dq_op: Any, dq_args: tuple[Any, ...]
) -> None:
    for user in list(obs_node.users):
        with graph.inserting_before(user):
            dq = graph.call_function(dq_op, (q_node, *dq_args))
        copy_meta(obs_node, dq)
        user.replace_input_with(obs_node, dq)


def _static(model: GraphModule, node: Node, obs: Any) -> None:
    graph = model.graph
    x = node.args[0]
    scale, zero_point = obs.calculate_qparams()
    qmin, qmax, dtype = int(obs.quant_min), int(obs.quant_max), obs.dtype
    if obs.qscheme == torch.per_channel_affine_float_qparams:
        _float_qparams_rows(model, node, scale, zero_point, obs)
        return
    if obs.qscheme in _PER_CHANNEL:
        axis = int(obs.ch_axis)
        with graph.inserting_before(node):
            s_node = graph.get_attr(_register_buffer(model, "_scale_", scale.float()))
            zp_dtype = torch.float32 if zero_point.is_floating_point() else torch.int64
            zp_node = graph.get_attr(
                _register_buffer(model, "_zero_point_", zero_point.to(zp_dtype))
            )
            args: tuple[Any, ...] = (s_node, zp_node, axis, qmin, qmax, dtype)
            q = graph.call_function(qd.quantize_per_channel.default, (x, *args))
        dq_op = qd.dequantize_per_channel.default
    else:
        args = (float(scale.reshape(-1)[0]), int(zero_point.reshape(-1)[0]), qmin, qmax, dtype)
        with graph.inserting_before(node):
            q = graph.call_function(qd.quantize_per_tensor.default, (x, *args))
        dq_op = qd.dequantize_per_tensor.default
    copy_meta(node, q)
    _one_dq_per_user(graph, node, q, dq_op, args)


def _float_qparams_rows(
    model: GraphModule, node: Node, scale: torch.Tensor, zero_point: torch.Tensor, obs: Any
) -> None:
    """``per_channel_affine_float_qparams``: ``q = clamp(round(x / s + zp))`` with a float
    ``zp`` per row. ``quantize_per_channel`` rounds before adding the zero point (and truncates
    a float one), up to 1.5 steps off; ``quantize_per_channel_group`` with one group per row
    adds it first, so the rows are emitted that way (tables are 2-D, rows on axis 0)."""
    from pt2q.convert.affine import emit_per_channel_group  # affine.py imports this module

    x = node.args[0]
    val = x.meta.get("val") if isinstance(x, Node) else None
    shape = tuple(val.shape) if val is not None else ()
    if len(shape) != 2 or int(obs.ch_axis) not in (0, -2) or shape[1] < 2:
        raise ValueError(
            f"convert_pt2e: per_channel_affine_float_qparams observer '{node.target}' on "
            f"'{getattr(x, 'name', x)}' needs a 2-D tensor (rows of at least 2 values) with "
            f"ch_axis 0, like an embedding table; got shape {shape}, ch_axis {obs.ch_axis}. "
            "Use per_channel_affine for other tensors."
        )
    zp = zero_point.to(torch.float32)  # torch's float-qparams kernels compute in float32
    emit_per_channel_group(
        model, node, scale, zp, int(obs.quant_min), int(obs.quant_max), obs.dtype, int(shape[1])
    )


def _dynamic(model: GraphModule, node: Node, obs: Any) -> None:
    graph = model.graph
    x = node.args[0]
    qmin, qmax, dtype = int(obs.quant_min), int(obs.quant_max), obs.dtype
    eps = float(getattr(obs, "eps", torch.finfo(torch.float32).eps))
    choose = (
        qd.choose_qparams_symmetric.tensor
        if obs.qscheme in _SYMMETRIC
        else qd.choose_qparams.tensor
    )
    with graph.inserting_before(node):
        qparams = graph.call_function(choose, (x, qmin, qmax, eps, dtype))
        scale = graph.call_function(operator.getitem, (qparams, 0))
        zp = graph.call_function(operator.getitem, (qparams, 1))
        args = (scale, zp, qmin, qmax, dtype)
        q = graph.call_function(qd.quantize_per_tensor.tensor, (x, *args))
    for new in (qparams, scale, zp, q):
        copy_meta(node, new)
    _one_dq_per_user(graph, node, q, qd.dequantize_per_tensor.tensor, args)


def _float_cast(model: GraphModule, node: Node, obs: Any) -> None:
    graph = model.graph
    with graph.inserting_before(node):
        low = graph.call_function(qd.convert_element_type.no_fuse, (node.args[0], obs.dtype))
        back = graph.call_function(qd.convert_element_type.no_fuse, (low, torch.float32))
    copy_meta(node, low)
    copy_meta(node, back)
    node.replace_all_uses_with(back)


def replace_observers_with_qdq(model: GraphModule) -> bool:
    """Rewrite every observer call of ``model``; delete the observer submodules."""
    graph = model.graph
    done: set[str] = set()
    for node in list(graph.nodes):
        obs = observer_of(model, node)
        if obs is None:
            continue
        assert isinstance(node.target, str)
        done.add(node.target)
        convert = getattr(obs, "convert", None)  # observers that write their own IR (affine)
        if callable(convert):
            convert(model, node)
            continue
        if obs.is_dynamic:
            _dynamic(model, node, obs)
        elif obs.dtype in _INT_DTYPES:
            _static(model, node, obs)
        elif obs.dtype in (torch.float16, torch.bfloat16):
            _float_cast(model, node, obs)
        else:
            node.replace_all_uses_with(node.args[0])  # float32 placeholder: nothing to do
        graph.erase_node(node)
    for name in done:
        if hasattr(model, name):
            delattr(model, name)
    return bool(done)
