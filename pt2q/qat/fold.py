"""QAT convert: collapse the simulated-fusion form back into one conv with folded constants.

Runs in ``convert_pt2e`` before observers / fake-quants become q/dq, so the weight's fake-quant
module (any chain of single-input ``call_module`` nodes) still sits between the scaled weight and
the conv. Matched directly on the graph (no re-tracing)::

    W ----------------- mul(W, reshape(scale))           W' (new get_attr) = W * scale
                               |                              |
                         [weight fake-quant]          ->   [weight fake-quant]   (kept: its qparams
                               |                              |                 become the int8
    x' -------------- conv(x', ., None)               x' - conv(x', W', b')     weight's at convert)
                               |                              |
                        div(., reshape(scale))              (users of the BN output)
                               |
                        [add(., reshape(b))]
                               |
                  batch_norm(gamma, beta, mean, var)

where ``scale = gamma / sqrt(var + eps)`` is the node ``pt2q.qat.fuse`` built (div or reciprocal
of sqrt(add(var, eps))), checked to read this BN's ``var`` / ``gamma`` and ``eps``, and
``b' = (b - mean) * scale + beta`` (``pt2q.qat.fold_math``), computed from the current running
statistics whatever the BN's training flag. The nodes of the form, the BN, its
``num_batches_tracked`` update and the attributes nothing reads any more are erased; new tensors
only (the trained tensors are not written to).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.fx import GraphModule, Node

from pt2q.qat.fold_math import fold_bn_weights
from pt2q.qat.graph_utils import (
    add_constant,
    attr_tensor,
    erase_bn,
    erase_dead_attrs,
    set_weight_and_bias,
)
from pt2q.qat.ops import BnMatch, match_bn, weighted_op

__all__ = ["fold_conv_bn_qat"]

aten = torch.ops.aten


@dataclass
class _FusedForm:
    """The nodes of one simulated-fusion form, as ``pt2q.qat.fuse`` built them."""

    bn: BnMatch
    op: Node  # conv / linear, weight arg = fake-quant chain or mul
    kind: str
    groups: int
    weight: Node  # original W (get_attr)
    bias: Node | None  # original b (get_attr) or None
    mul: Node  # W * reshape(scale)
    form: list[Node]  # every node of the form to erase once the BN is gone


def _call(node: object, *targets: object) -> bool:
    return isinstance(node, Node) and node.op == "call_function" and node.target in targets


def _scale_matches(scale: Node, bn: BnMatch) -> list[Node] | None:
    """The nodes computing ``scale`` when it is gamma / sqrt(var + eps) of this BN, else None."""
    if _call(scale, aten.div.Tensor):
        gamma, std = scale.args
        if gamma is not bn.weight:
            return None
    elif _call(scale, aten.reciprocal.default) and bn.weight is None:
        std = scale.args[0]
    else:
        return None
    if not _call(std, aten.sqrt.default):
        return None
    assert isinstance(std, Node)
    var_eps = std.args[0]
    if not _call(var_eps, aten.add.Tensor):
        return None
    assert isinstance(var_eps, Node)
    if var_eps.args[0] is not bn.running_var or var_eps.args[1] != bn.eps:
        return None
    return [scale, std, var_eps]


def _reshape_of(node: object, source: Node) -> bool:
    return isinstance(node, Node) and _call(node, aten.reshape.default) and node.args[0] is source


def _match(bn: BnMatch) -> _FusedForm | None:
    y = bn.input
    bias: Node | None = None
    form: list[Node] = []
    if _call(y, aten.add.Tensor) and len(y.users) == 1:
        y, b_shaped = y.args  # type: ignore[assignment]
        if not _call(b_shaped, aten.reshape.default):
            return None
        assert isinstance(b_shaped, Node)
        bias = b_shaped.args[0]  # type: ignore[assignment]
        form += [bn.input, b_shaped]
    if not (_call(y, aten.div.Tensor) and len(y.users) == 1):
        return None
    op, y_scale = y.args
    if not isinstance(op, Node) or not isinstance(y_scale, Node) or len(op.users) != 1:
        return None
    info = weighted_op(op)
    if info is None or not _call(y_scale, aten.reshape.default):
        return None
    scale = y_scale.args[0]
    assert isinstance(scale, Node)
    scale_nodes = _scale_matches(scale, bn)
    if scale_nodes is None:
        return None
    mul = op.args[1]
    while isinstance(mul, Node) and mul.op == "call_module" and len(mul.args) == 1:
        mul = mul.args[0]  # through the weight's fake-quant / observer modules
    if not _call(mul, aten.mul.Tensor):
        return None
    assert isinstance(mul, Node)
    weight, w_scale = mul.args
    if not isinstance(weight, Node) or not _reshape_of(w_scale, scale):
        return None
    assert isinstance(w_scale, Node)
    form += [y, y_scale, mul, w_scale, *scale_nodes]
    return _FusedForm(bn, op, info[0], info[1], weight, bias, mul, form)


def _fold_one(gm: GraphModule, f: _FusedForm) -> bool:
    bn = f.bn
    weight, bias = attr_tensor(gm, f.weight), attr_tensor(gm, f.bias)
    mean, var = attr_tensor(gm, bn.running_mean), attr_tensor(gm, bn.running_var)
    gamma, beta = attr_tensor(gm, bn.weight), attr_tensor(gm, bn.bias)
    if weight is None or mean is None or var is None or (f.bias is not None and bias is None):
        return False
    if (bn.weight is not None and gamma is None) or (bn.bias is not None and beta is None):
        return False
    new_w, new_b = fold_bn_weights(
        weight, bias, gamma, beta, mean, var, bn.eps, kind=f.kind, groups=f.groups
    )
    w_node = add_constant(gm, f"{f.weight.target}_bn_folded", new_w, f.mul, meta_from=f.weight)
    f.mul.replace_all_uses_with(w_node)
    b_meta: Node | None
    if f.bias is not None:
        b_hint, b_meta = f"{f.bias.target}_bn_folded", f.bias
    else:
        b_hint, b_meta = f"{f.weight.target}_bias_bn_folded", bn.bias
    b_node = add_constant(gm, b_hint, new_b, f.op, meta_from=b_meta)
    w_arg = f.op.args[1]
    assert isinstance(w_arg, Node), w_arg  # the conv/linear weight (the fake-quant chain)
    set_weight_and_bias(f.op, w_arg, b_node)
    erase_bn(gm, bn, f.op)
    for node in f.form:  # outputs first: each node's users are erased before it
        if not node.users:
            gm.graph.erase_node(node)
    attrs = (f.weight, f.bias, bn.weight, bn.bias, bn.running_mean, bn.running_var)
    erase_dead_attrs(gm, [n for n in attrs if n is not None and n.op == "get_attr"])
    return True


def fold_conv_bn_qat(gm: GraphModule) -> bool:
    """Fold every simulated-fusion conv/linear + BN of ``gm`` into its conv, in place.

    Returns whether the graph changed (then ``gm`` is recompiled). A BN not in the fused form is
    left alone (the PTQ fold, ``pt2q.passes.fold_bn``, is the pass for plain conv + BN).
    """
    changed = False
    for node in list(gm.graph.nodes):
        bn = match_bn(node)
        form = _match(bn) if bn is not None else None
        if form is not None and _fold_one(gm, form):
            changed = True
    if changed:
        gm.graph.lint()
        gm.recompile()
    return changed
