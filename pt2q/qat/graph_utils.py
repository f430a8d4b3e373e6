"""Small GraphModule helpers shared by the BN passes: read get_attr tensors, add constants,
drop attributes nothing reads any more."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.fx import GraphModule, Node

__all__ = ["attr_tensor", "add_constant", "erase_dead_attrs"]


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
        if node.op == "get_attr" and not node.users and node.graph is gm.graph:
            erased.add(str(node.target))
            gm.graph.erase_node(node)
    still_read = {str(n.target) for n in gm.graph.nodes if n.op == "get_attr"}
    for target in erased - still_read:
        owner_name, _, leaf = target.rpartition(".")
        owner = gm.get_submodule(owner_name) if owner_name else gm
        if hasattr(owner, leaf):
            delattr(owner, leaf)
