"""Constant subgraphs: nodes whose value depends on no graph input (weights and pure ops of
weights), and their eager evaluation. Used by prepare (observers of constants observe once)
and convert (constant observers, weight quantization folding)."""

from __future__ import annotations

from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.convert.weight_quantize import FAST_QUANTIZE

__all__ = ["constant_nodes", "evaluate_constant"]


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
        # quantize of a weight: the same integers, computed in place (pt2q.convert.weight_quantize)
        value = FAST_QUANTIZE.get(node.target, node.target)(*args, **kwargs)
    cache[node] = value
    return value
