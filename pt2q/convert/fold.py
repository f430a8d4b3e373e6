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

from pt2q.meta import copy_meta

__all__ = ["fold_constant_quantize", "constant_nodes", "evaluate_constant", "drop_unused_attrs"]

qd = torch.ops.quantized_decomposed
_QUANTIZE_OPS = (
    qd.quantize_per_tensor.default,
    qd.quantize_per_channel.default,
)


def _fetch_attr(model: torch.nn.Module, target: str) -> Any:
    obj: Any = model
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def constant_nodes(model: GraphModule) -> set[Node]:
    """Nodes whose value depends on no graph input: get_attrs and pure ops of get_attrs."""
    const: set[Node] = set()
    for node in model.graph.nodes:
        if node.op == "get_attr":
            const.add(node)
        elif (
            node.op == "call_function"
            and node.all_input_nodes
            and all(n in const for n in node.all_input_nodes)
            and not node.is_impure()
        ):
            const.add(node)
    return const


def evaluate_constant(model: GraphModule, node: Node, cache: dict[Node, Any]) -> Any:
    """Value of a constant node, computed eagerly (memoised in ``cache``)."""
    if node in cache:
        return cache[node]
    if node.op == "get_attr":
        assert isinstance(node.target, str)
        value = _fetch_attr(model, node.target)
    else:
        args = torch.fx.node.map_arg(node.args, lambda n: evaluate_constant(model, n, cache))
        kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: evaluate_constant(model, n, cache))
        assert callable(node.target)
        value = node.target(*args, **kwargs)
    cache[node] = value
    return value


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
        value = evaluate_constant(model, node, cache)
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
