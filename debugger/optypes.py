"""Op classes the debugger's tables and root-cause ranking rely on.

    PASS_THROUGH  ops that only move or relabel values (view, reshape, transpose, permute,
                  contiguous, expand, flatten, clone, (un)squeeze, dropout in eval): their row
                  repeats the producer's numbers, so reports fold them into the producer
    AFFINE        ops through which an error travels unchanged in kind (elementwise add / sub /
                  mul / div, eval batch norm, plus PASS_THROUGH): the walk to a node's first
                  non-linear consumer crosses them
    NONLINEAR     ops where a small input error can become a large output error (softmax,
                  activations, normalisations, pooling by max): the first one reached is the
                  *consumer* at which an isolated error is also measured

Ops are matched by their overload packet (``aten.view`` covers ``aten.view.default``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.fx import Node

__all__ = ["is_pass_through", "is_affine", "is_nonlinear", "produces_tensor"]

_aten = torch.ops.aten

_PASS_THROUGH = {
    _aten.view,
    _aten.reshape,
    _aten._unsafe_view,
    _aten.transpose,
    _aten.t,
    _aten.permute,
    _aten.contiguous,
    _aten.expand,
    _aten.flatten,
    _aten.clone,
    _aten.unsqueeze,
    _aten.squeeze,
    _aten.alias,
    _aten.detach,
    _aten.dropout,
    _aten.feature_dropout,
    _aten.unflatten,
}
_AFFINE = _PASS_THROUGH | {
    _aten.add,
    _aten.add_,
    _aten.sub,
    _aten.sub_,
    _aten.mul,
    _aten.mul_,
    _aten.div,
    _aten.div_,
    _aten.neg,
    _aten.batch_norm,
    _aten._native_batch_norm_legit_no_training,
    _aten.masked_fill,
    _aten.where,
}
_NONLINEAR = {
    _aten.softmax,
    _aten._softmax,
    _aten.log_softmax,
    _aten._log_softmax,
    _aten.relu,
    _aten.relu_,
    _aten.relu6,
    _aten.hardtanh,
    _aten.gelu,
    _aten.silu,
    _aten.sigmoid,
    _aten.tanh,
    _aten.hardswish,
    _aten.hardsigmoid,
    _aten.elu,
    _aten.leaky_relu,
    _aten.mish,
    _aten.exp,
    _aten.erf,
    _aten.layer_norm,
    _aten.native_layer_norm,
    _aten.group_norm,
    _aten.rms_norm,
    _aten.max_pool2d,
    _aten.max_pool1d,
    _aten.adaptive_max_pool2d,
    _aten.scaled_dot_product_attention,
}


def _packet(node: Node) -> Any:
    target = node.target
    if node.op != "call_function":
        return None
    return getattr(target, "overloadpacket", target)


def is_pass_through(node: Node) -> bool:
    """Whether ``node`` only moves or relabels its first input's values."""
    return _packet(node) in _PASS_THROUGH


def is_affine(node: Node) -> bool:
    """Whether an input error crosses ``node`` without a change in kind (see module docstring)."""
    return _packet(node) in _AFFINE


def is_nonlinear(node: Node) -> bool:
    """Whether ``node`` is a non-linear consumer (see module docstring)."""
    return _packet(node) in _NONLINEAR


def produces_tensor(node: Node) -> bool:
    """Whether ``node`` outputs a tensor (or a structure holding one), judged from
    ``meta["val"]``; nodes without ``val`` are assumed to (their value decides later)."""
    if "val" not in node.meta:
        return True
    val = node.meta["val"]
    if isinstance(val, torch.Tensor):
        return True
    if isinstance(val, (list, tuple)):
        return any(isinstance(v, torch.Tensor) for v in val)
    return False
