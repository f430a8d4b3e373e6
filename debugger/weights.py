"""Per-channel SQNR of quantized weights against the float weights they came from.

For a matched group whose quantized op reads its weight through a dequantize of a constant
(``get_attr -> dequantize_per_channel / per_tensor``), compare the dequantized weight with the
float op's weight, channel by channel along axis 0 (output channels of conv / linear). When the
float group absorbed a batch norm (folded at prepare), the float weight is folded the same way
first, ``w * gamma / sqrt(running_var + eps)`` per output channel, so a correct fold is no error.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.debugger.groups import GraphGroups, is_dequantize_node
from pt2q.debugger.handles import get_handle

__all__ = ["weight_sqnr_per_channel", "per_channel_sqnr"]

_aten = torch.ops.aten
# BN op -> (index of weight, running_var, eps) in its args
_BN_ARGS = {
    _aten.batch_norm.default: (1, 4, 7),
    _aten._native_batch_norm_legit_no_training.default: (1, 4, 6),
}
_WEIGHTED = {
    _aten.conv1d.default,
    _aten.conv2d.default,
    _aten.conv3d.default,
    _aten.linear.default,
    _aten.convolution.default,
}


def _attr(gm: GraphModule, node: Any) -> Any:
    if not isinstance(node, Node):
        return node
    if node.op == "get_attr":
        value: Any = gm
        for part in str(node.target).split("."):
            value = getattr(value, part)
        return value
    if is_dequantize_node(node):
        args = [_attr(gm, a) for a in node.args]
        kwargs = {k: _attr(gm, v) for k, v in node.kwargs.items()}
        return node.target(*args, **kwargs)  # type: ignore[operator]
    raise LookupError(f"node {node.name} ({node.op}) is not a constant weight")


def _bn_fold(float_gm: GraphModule, absorbed: list[int], w: torch.Tensor) -> torch.Tensor:
    for node in float_gm.graph.nodes:
        if get_handle(node) in absorbed and node.target in _BN_ARGS:
            wi, vi, ei = _BN_ARGS[node.target]
            gamma = _attr(float_gm, node.args[wi])
            var = _attr(float_gm, node.args[vi])
            eps = float(node.args[ei]) if len(node.args) > ei else 1e-5
            if gamma is None:
                gamma = torch.ones_like(var)
            scale = gamma / torch.sqrt(var + eps)  # (C_out,)
            return w * scale.reshape([-1] + [1] * (w.dim() - 1))
    return w


def weight_sqnr_per_channel(
    float_groups: GraphGroups,
    quant_groups: GraphGroups,
    handle: int,
    consts: dict[Node, Any] | None = None,
) -> list[float] | None:
    """SQNR (dB) per output channel of ``handle``'s weight, or None when it has no quantized
    constant weight (or the float weight cannot be read). ``consts``: the quantized graph's
    already computed constant values (``execute.constant_values``), reused when given."""
    qrep, frep = quant_groups.rep.get(handle), float_groups.rep.get(handle)
    if qrep is None or frep is None or qrep.target not in _WEIGHTED or len(qrep.args) < 2:
        return None
    wq_node, wf_node = qrep.args[1], frep.args[1]
    if not (isinstance(wq_node, Node) and is_dequantize_node(wq_node)):
        return None
    try:
        wq = consts[wq_node] if consts and wq_node in consts else _attr(quant_groups.gm, wq_node)
        wf = _attr(float_groups.gm, wf_node)
    except (LookupError, AttributeError):
        return None
    if not isinstance(wf, torch.Tensor) or wf.shape != wq.shape:
        return None
    wf = _bn_fold(float_groups.gm, float_groups.absorbed.get(handle, []), wf.detach())
    return per_channel_sqnr(wf, wq)


def per_channel_sqnr(ref: torch.Tensor, actual: torch.Tensor) -> list[float]:
    """SQNR (dB) of each slice along axis 0, with ``pt2q.debugger.metrics``' policy (identical
    -> inf, zero signal with error -> -inf, non-finite values -> nan), in one vectorised pass."""
    r = ref.detach().float().reshape(ref.shape[0], -1)
    a = actual.detach().float().reshape(actual.shape[0], -1)
    d = r - a
    signal = (r * r).sum(1, dtype=torch.float64)
    noise = (d * d).sum(1, dtype=torch.float64)
    finite = torch.isfinite(signal) & torch.isfinite((a * a).sum(1, dtype=torch.float64))
    db = 10.0 * torch.log10(signal / noise)
    db = torch.where(noise == 0, math.inf, torch.where(signal == 0, -math.inf, db))
    db = torch.where(finite, db, math.nan)
    return [float(v) for v in db.tolist()]
