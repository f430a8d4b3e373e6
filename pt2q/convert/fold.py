"""Fold the quantization of constants (weights, biases) into integer constants.

Before::

    get_attr(conv.weight) -> quantize_per_channel -> dequantize_per_channel -> conv2d

After (only the weight's dequantize stays; the float weight is dropped when nothing else uses it)::

    get_attr(_frozen_param0: int8) -> dequantize_per_channel -> conv2d
"""

from __future__ import annotations

from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.constants import constant_nodes, evaluate_constant
from pt2q.meta import copy_meta
from pt2q.qdq.meta import ROUNDED_WEIGHT_KEY

__all__ = ["fold_constant_quantize", "drop_unused_attrs", "ROUNDED_WEIGHT_KEY"]


qd = torch.ops.quantized_decomposed
_QUANTIZE_OPS = (
    qd.quantize_per_tensor.default,
    qd.quantize_per_channel.default,
    qd.quantize_per_channel_group.default,
)


def _unique_name(model: GraphModule, prefix: str) -> str:
    i = 0
    while hasattr(model, f"{prefix}{i}"):
        i += 1
    return f"{prefix}{i}"


def drop_unused_attrs(model: GraphModule) -> None:
    """Erase dead get_attr nodes and delete the attributes no remaining node reads."""
    graph = model.graph
    for node in list(graph.nodes):
        if node.op == "get_attr" and not node.users:
            graph.erase_node(node)
    used = {n.target for n in graph.nodes if n.op == "get_attr"}
    for name, _ in list(model.named_parameters()) + list(model.named_buffers()):
        if name in used:
            continue
        owner_path, _, attr = name.rpartition(".")
        owner = model.get_submodule(owner_path) if owner_path else model
        if any(u == name or str(u).startswith(name + ".") for u in used):
            continue
        delattr(owner, attr)


def fold_constant_quantize(model: GraphModule) -> bool:
    """Replace every quantize op of a constant with an integer ``get_attr``; returns changed."""
    graph = model.graph
    const = constant_nodes(model)
    cache: dict[Node, Any] = {}
    changed = False
    for node in list(graph.nodes):
        if node.target not in _QUANTIZE_OPS or node not in const:
            continue
        # Adaptive rounding (pt2q.algorithms.adaround) chose this weight's integers itself and
        # left them on the weight's get_attr node: use them as they are, never re-round.
        src = node.args[0]
        chosen = src.meta.get(ROUNDED_WEIGHT_KEY) if isinstance(src, Node) else None
        value = chosen if chosen is not None else evaluate_constant(model, node, cache)
        name = _unique_name(model, "_frozen_param")
        model.register_buffer(name, value.detach().contiguous())
        with graph.inserting_before(node):
            frozen = graph.get_attr(name)
        copy_meta(node, frozen)
        node.replace_all_uses_with(frozen)
        changed = True
    if changed:
        graph.eliminate_dead_code()
        drop_unused_attrs(model)
    return changed
