"""Fold batch norm into the preceding conv / linear (PTQ prepare, before annotation).

Graph, before and after (conv of any overload in ``pt2q.qat.ops.WEIGHTED_OPS``; the BN may be
``aten.batch_norm`` in either mode or a tuple-returning overload read through ``getitem(., 0)``)::

    x   W   b (or None)                        x   W'  b'        (new get_attr constants)
     \\  |  /                                    \\  |  /
      conv        gamma beta mean var    ->      conv
        \\          |    |    |   /                |
         batch_norm(training=?, eps)              (users of the BN output)
              |
       (users of the BN output)

with ``W' = W * gamma / sqrt(var + eps)`` along the output-channel axis and
``b' = (b - mean) * gamma / sqrt(var + eps) + beta`` (``pt2q.qat.fold_math``). The running
statistics are used whatever the BN's training flag: a PTQ model is calibrated and deployed in
eval mode. ``linear`` + BN folds only when the linear's output is 2-D ``(N, C)``: on 3-D input a
BatchNorm1d normalises dim 1, which is not the linear's feature dim (a warning says
``Not fusing linear+bn``).

The new constants are new tensors registered on ``gm``; the tensors of the exported model (shared
with the user's float model) are never written to. Attributes nothing reads any more are dropped
from ``gm``, and so is the ``num_batches_tracked.add_`` update of a train-mode export.
"""

from __future__ import annotations

import torch
from torch.fx import GraphModule, Node

from pt2q.passes.linear_bn_warning import warn_linear_bn_not_fused
from pt2q.qat.fold_math import fold_bn_weights
from pt2q.qat.graph_utils import (
    add_constant,
    attr_tensor,
    erase_bn,
    erase_dead_attrs,
    set_weight_and_bias,
)
from pt2q.qat.ops import BnMatch, match_bn, node_arg, weighted_op

__all__ = ["fold_bn_into_preceding_op"]


def _output_is_2d(op: Node) -> bool:
    val = op.meta.get("val")
    return isinstance(val, torch.Tensor) and val.dim() == 2


def _fold_one(gm: GraphModule, bn: BnMatch) -> bool:
    op = bn.input
    info = weighted_op(op)
    if info is None or len(op.users) != 1:
        return False
    kind, groups = info
    if kind == "linear" and not _output_is_2d(op):
        warn_linear_bn_not_fused(op)
        return False
    weight_node = op.args[1]
    bias_node = node_arg(op, 2, "bias")
    weight = attr_tensor(gm, weight_node if isinstance(weight_node, Node) else None)
    bias = attr_tensor(gm, bias_node if isinstance(bias_node, Node) else None)
    mean, var = attr_tensor(gm, bn.running_mean), attr_tensor(gm, bn.running_var)
    if weight is None or mean is None or var is None or (bias_node is not None and bias is None):
        return False
    gamma, beta = attr_tensor(gm, bn.weight), attr_tensor(gm, bn.bias)
    if (bn.weight is not None and gamma is None) or (bn.bias is not None and beta is None):
        return False
    new_w, new_b = fold_bn_weights(
        weight, bias, gamma, beta, mean, var, bn.eps, kind=kind, groups=groups
    )
    assert isinstance(weight_node, Node)
    w_node = add_constant(gm, f"{weight_node.target}_bn_folded", new_w, op, meta_from=weight_node)
    b_hint = (
        f"{bias_node.target}_bn_folded"
        if isinstance(bias_node, Node)
        else (f"{weight_node.target}_bias_bn_folded")
    )
    b_meta = bias_node if isinstance(bias_node, Node) else bn.bias
    b_node = add_constant(gm, b_hint, new_b, op, meta_from=b_meta)
    set_weight_and_bias(op, w_node, b_node)
    erase_bn(gm, bn, op)
    erase_dead_attrs(gm, [n for n in (weight_node, bias_node) if isinstance(n, Node)])
    return True


def fold_bn_into_preceding_op(gm: GraphModule) -> bool:
    """Fold every conv(1d/2d/3d/transpose)+BN and linear+BN (2-D output) in ``gm``, in place.

    A BN is folded only when its input is such an op used by the BN alone, with get_attr weight
    (and bias, if any) and get_attr BN statistics; anything else is left as it is. Returns
    whether the graph changed (then ``gm`` is recompiled).
    """
    changed = False
    for node in list(gm.graph.nodes):
        bn = match_bn(node)
        if bn is not None and _fold_one(gm, bn):
            changed = True
    if changed:
        gm.graph.lint()
        gm.recompile()
    return changed
