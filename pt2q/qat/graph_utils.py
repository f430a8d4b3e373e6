"""Small GraphModule helpers shared by the BN passes: read get_attr tensors, add constants,
drop attributes nothing reads any more, re-point a conv's weight/bias, erase a BN."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.fx import GraphModule, Node

from pt2q.qat.ops import BnMatch, num_batches_tracked_nodes

__all__ = [
    "attr_tensor",
    "add_constant",
    "erase_dead_attrs",
    "set_weight_and_bias",
    "erase_bn",
]


def attr_tensor(gm: GraphModule, node: Node | None) -> Tensor | None:
    """The tensor a get_attr ``node`` reads, or None when ``node`` is None or not a tensor get_attr."""
    if node is None or node.op != "get_attr":
        return None
    owner_name, _, leaf = str(node.target).rpartition(".")
    owner = gm.get_submodule(owner_name) if owner_name else gm
    value = getattr(owner, leaf, None)
    return value if isinstance(value, Tensor) else None


def _unique_name(gm: GraphModule, hint: str) -> str:
    base = hint.replace(".", "_")
    name, i = base, 0
    while hasattr(gm, name):
        i += 1
        name = f"{base}_{i}"
    return name


def add_constant(
    gm: GraphModule,
    hint: str,
    value: Tensor,
    before: Node,
    meta_from: Node | None = None,
    parameter: bool = True,
) -> Node:
    """Register ``value`` as a new top-level attribute of ``gm`` and return a get_attr node for it,
    inserted before ``before``. ``meta_from``'s metadata (e.g. ``val``, ``stack_trace``) is copied
    when given; a parameter is registered with ``requires_grad=False``."""
    name = _unique_name(gm, hint)
    if parameter:
        gm.register_parameter(name, torch.nn.Parameter(value, requires_grad=False))
    else:
        gm.register_buffer(name, value)
    with gm.graph.inserting_before(before):
        node = gm.graph.get_attr(name)
    if meta_from is not None:
        node.meta.update({k: v for k, v in meta_from.meta.items() if k != "val"})
        val = meta_from.meta.get("val")
        if isinstance(val, Tensor) and val.shape == value.shape:
            node.meta["val"] = val
    return node


def erase_dead_attrs(gm: GraphModule, candidates: list[Node]) -> None:
    """Erase the get_attr nodes in ``candidates`` that have no users, and delete the attribute
    behind each when no other get_attr node of the graph reads it (the tensors themselves are
    untouched: the user's model may still hold them)."""
    erased: set[str] = set()
    for node in candidates:
        if node.op == "get_attr" and not node.users and not getattr(node, "_erased", False):
            erased.add(str(node.target))
            gm.graph.erase_node(node)
    still_read = {str(n.target) for n in gm.graph.nodes if n.op == "get_attr"}
    for target in erased - still_read:
        owner_name, _, leaf = target.rpartition(".")
        owner = gm.get_submodule(owner_name) if owner_name else gm
        if hasattr(owner, leaf):
            delattr(owner, leaf)


def set_weight_and_bias(op: Node, weight: Node, bias: Node | None) -> None:
    """Point a conv/linear node's weight (arg 1) and bias (arg 2 or kwarg ``bias``) at new nodes."""
    args = list(op.args)
    args[1] = weight
    if len(args) > 2:
        args[2] = bias
        op.args = tuple(args)
    else:
        op.args = tuple(args)
        op.kwargs = {**op.kwargs, "bias": bias}


def erase_bn(gm: GraphModule, bn: BnMatch, replacement: Node) -> None:
    """Route the BN's output users to ``replacement`` and erase the BN, its getitem and its
    ``num_batches_tracked`` update; drop the BN's attributes nothing reads any more."""
    bn.output.replace_all_uses_with(replacement)
    if bn.output is not bn.node:
        gm.graph.erase_node(bn.output)
    gm.graph.erase_node(bn.node)
    counter = num_batches_tracked_nodes(bn)
    for n in counter:
        if n.op != "get_attr":
            gm.graph.erase_node(n)
    params = [bn.weight, bn.bias, bn.running_mean, bn.running_var]
    erase_dead_attrs(gm, [n for n in params + counter if n is not None and n.op == "get_attr"])
