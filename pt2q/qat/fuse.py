"""QAT prepare: rewrite conv/linear + batch norm into the simulated-fusion training form.

Graph, before and after (the BN node is kept, with its training flag, momentum and eps, so it
keeps updating its running statistics in training and ``move_exported_model_to_eval`` can still
switch it)::

    x   W   b                          gamma        var
     \\  |  /                              \\    add(var, eps) -> sqrt        # running_std
      conv                                  div(gamma, running_std)        # scale, (C,)
       |                                     |                     \\
    batch_norm(gamma, beta,        W   reshape(scale, [-1,1,..])   reshape(scale, [1,-1,1,..])
               mean, var)           \\     /                               |
       |                            mul        <- weight annotation lands   |
      ...                     x      |            on this edge (mul, conv)  |
                               \\     |                                     |
                                conv(x, W * scale, bias=None)              |
                                  |                                        |
                                 div(conv, ------------------------------- +
                                  |
                                 add(., reshape(b, [1,-1,1,..]))          # only if conv had b
                                  |
                                 batch_norm(gamma, beta, mean, var)       # same node as before
                                  |
                                 ...

In eval mode this computes exactly ``BN(conv(x, W) + b)``; in training the BN normalises with
batch statistics while the conv sees the weight already scaled by the BN factor, so the weight
fake-quant observes the weight that ``pt2q.qat.fold`` folds at convert (the approximate method of
``torch.ao.nn.intrinsic.qat.ConvBn2d``). With ``gamma`` absent, ``scale = 1 / running_std``.

Matched: every op of ``pt2q.qat.ops.WEIGHTED_OPS`` (conv 1d/2d/3d, ``padding="same"``, conv
transpose with ``groups == 1``, linear with 2-D output) whose only user is a BN with running
statistics. Not fused: a conv whose output a quantizer already annotated (its BN cannot fold).
Called after annotation, it carries the annotations over (``pt2q.qat.annotations``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.fx import GraphModule, Node
from torch.fx.node import map_arg

from pt2q.passes.linear_bn_warning import warn_linear_bn_not_fused
from pt2q.qat.annotations import has_output_qspec, remap_input_edge
from pt2q.qat.ops import BnMatch, match_bn, node_arg, weighted_op

__all__ = ["fuse_conv_bn_qat"]

aten = torch.ops.aten

# Metadata worth copying from the conv onto the nodes the fusion adds (not "val": it is computed).
_META_KEYS = ("nn_module_stack", "stack_trace", "source_fn_stack", "from_node", "torch_fn")


def _new_node(
    gm: GraphModule, target: Any, args: tuple[Any, ...], meta_src: Node, name: str
) -> Node:
    """A call_function node named ``name`` (made unique), inserted at the graph's current insert
    point, with ``meta_src``'s module metadata and a ``val`` computed from its inputs' fake values
    when they have them."""
    node = gm.graph.create_node("call_function", target, args, name=name)
    for key in _META_KEYS:
        if key in meta_src.meta:
            node.meta[key] = meta_src.meta[key]
    vals = map_arg(args, lambda n: n.meta.get("val"))
    if all(v is not None for v in _flat_nodes(args, vals)):
        try:
            node.meta["val"] = target(*vals)
        except Exception:  # noqa: BLE001 - val is an optional hint; the graph is right without it
            pass
    return node


def _flat_nodes(args: tuple[Any, ...], vals: Any) -> list[Any]:
    out: list[Any] = []
    for a, v in zip(args, vals, strict=True):
        if isinstance(a, Node):
            out.append(v)
    return out


def _shapes(kind: str, ndim: int) -> tuple[list[int], list[int]]:
    """(weight-scale shape, output-scale shape) for a weight of ``ndim`` dims."""
    w_shape = [1] * ndim
    w_shape[1 if kind == "conv_transpose" else 0] = -1
    y_shape = [1] * ndim
    y_shape[1] = -1
    return w_shape, y_shape


def _weight_ndim(op: Node, weight: Node) -> int | None:
    val = weight.meta.get("val")
    if isinstance(val, torch.Tensor):
        return val.dim()
    if weight.op == "get_attr":
        owner_name, _, leaf = str(weight.target).rpartition(".")
        gm = op.graph.owning_module
        if gm is not None:
            value = getattr(gm.get_submodule(owner_name) if owner_name else gm, leaf, None)
            if isinstance(value, torch.Tensor):
                return value.dim()
    return None


def _fuse_one(gm: GraphModule, bn: BnMatch) -> bool:
    op = bn.input
    info = weighted_op(op)
    if info is None or len(op.users) != 1 or has_output_qspec(op):
        return False
    kind, groups = info
    weight = op.args[1] if len(op.args) > 1 else None
    if not isinstance(weight, Node) or (kind == "conv_transpose" and groups != 1):
        return False
    out_val = op.meta.get("val")
    if kind == "linear" and not (isinstance(out_val, torch.Tensor) and out_val.dim() == 2):
        warn_linear_bn_not_fused(op)
        return False
    ndim = _weight_ndim(op, weight)
    if ndim is None:
        return False
    bias = node_arg(op, 2, "bias")
    bias = bias if isinstance(bias, Node) else None
    w_shape, y_shape = _shapes(kind, ndim)

    g = gm.graph
    p = op.name
    with g.inserting_before(op):
        var_eps = _new_node(gm, aten.add.Tensor, (bn.running_var, bn.eps), op, f"{p}_var_eps")
        running_std = _new_node(gm, aten.sqrt.default, (var_eps,), op, f"{p}_running_std")
        if bn.weight is not None:
            scale = _new_node(gm, aten.div.Tensor, (bn.weight, running_std), op, f"{p}_scale")
        else:
            scale = _new_node(gm, aten.reciprocal.default, (running_std,), op, f"{p}_scale")
        w_scale = _new_node(gm, aten.reshape.default, (scale, w_shape), op, f"{p}_weight_scale")
        scaled_w = _new_node(gm, aten.mul.Tensor, (weight, w_scale), op, f"{p}_scaled_weight")
    args = list(op.args)
    args[1] = scaled_w
    if len(args) > 2:
        args[2] = None
    op.args = tuple(args)
    if "bias" in op.kwargs:
        op.kwargs = {**op.kwargs, "bias": None}
    with g.inserting_after(op):
        y_scale = _new_node(gm, aten.reshape.default, (scale, y_shape), op, f"{p}_output_scale")
    with g.inserting_after(y_scale):
        unscaled = _new_node(gm, aten.div.Tensor, (op, y_scale), op, f"{p}_unscaled")
    bn_input = unscaled
    if bias is not None:
        with g.inserting_after(unscaled):
            b_shaped = _new_node(gm, aten.reshape.default, (bias, y_shape), op, f"{p}_bias")
        with g.inserting_after(b_shaped):
            bn_input = _new_node(gm, aten.add.Tensor, (unscaled, b_shaped), op, f"{p}_biased")
    bn.node.replace_input_with(op, bn_input)
    remap_input_edge(gm, op, weight, scaled_w, dropped=bias)
    remap_input_edge(gm, bn.node, op, bn_input)
    return True


def fuse_conv_bn_qat(gm: GraphModule) -> bool:
    """Rewrite every conv/linear + BN of ``gm`` into the simulated-fusion form above, in place.

    Returns whether the graph changed (then ``gm`` is recompiled). Idempotent: a fused conv's
    user is the ``div``, not a BN, so a second call changes nothing.
    """
    changed = False
    for node in list(gm.graph.nodes):
        bn = match_bn(node)
        if bn is not None and _fuse_one(gm, bn):
            changed = True
    if changed:
        gm.graph.lint()
        gm.recompile()
    return changed
