"""Graph helpers of ``torchao.quantization.pt2e.graph_utils``, name for name.

``find_sequential_partitions`` finds chains of source partitions (``nn.Conv2d`` then ``nn.ReLU``)
from ``source_fn_stack`` metadata, treating a module and its functional form as one type
(``get_equivalent_types``; ``update_equivalent_types_dict`` replaces the table, process-wide as
in torchao). ``bfs_trace_with_node_process`` visits every node of a graph and of the sub-graphs
of its control-flow ops (cond branches, map / scan bodies, while_loop body).
``collect_producer_nodes`` collects a node's producers up to ``get_attr`` nodes.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.export import ExportedProgram
from torch.fx import GraphModule, Node
from torch.fx.passes.utils.source_matcher_utils import (
    SourcePartition,
    check_subgraphs_connected,
    get_source_partitions,
)

__all__ = [
    "bfs_trace_with_node_process",
    "collect_producer_nodes",
    "find_sequential_partitions",
    "get_equivalent_types",
    "update_equivalent_types_dict",
]

F = torch.nn.functional
hop = torch.ops.higher_order

# torchao's table plus the op names torch.export now records for functional calls (the
# ``torch_fn`` metadata; exported modules no longer carry ``source_fn_stack``), so that
# ``F.relu(conv(x))`` matches ``[nn.Conv2d, nn.ReLU]`` as it did on older exports.
_DEFAULT_EQUIVALENT_TYPES: list[set[Any]] = [
    {torch.nn.Conv1d, F.conv1d, "conv1d"},
    {torch.nn.Conv2d, F.conv2d, "conv2d"},
    {torch.nn.AdaptiveAvgPool2d, F.adaptive_avg_pool2d, "adaptive_avg_pool2d"},
    {torch.nn.ReLU, F.relu, F.relu_, "relu", "relu_"},
    {torch.nn.BatchNorm2d, F.batch_norm, "batch_norm"},
    {torch.nn.Hardtanh, F.hardtanh, F.hardtanh_, "hardtanh", "hardtanh_"},
    {torch.add, operator.add, operator.iadd, "add", "add_"},
    {torch.mul, operator.mul, operator.imul, "mul", "mul_"},
]


class _EquivalentTypes:
    """The table of interchangeable partition types and its member -> group lookup."""

    def __init__(self, groups: list[set[Any]]) -> None:
        self.groups = groups
        self.lookup = {member: list(group) for group in groups for member in group}

    def matching(self, partition_type: Any) -> list[Any]:
        return [partition_type, *self.lookup.get(partition_type, [])]


_equivalent = _EquivalentTypes(_DEFAULT_EQUIVALENT_TYPES)


def get_equivalent_types() -> list[set[Any]]:
    """The groups of types treated as one by ``find_sequential_partitions``."""
    return _equivalent.groups


def update_equivalent_types_dict(customized_equivalent_types: list[set[Any]] | None = None) -> None:
    """Replace the equivalent-types table (for every later call in this process)."""
    global _equivalent
    if customized_equivalent_types is None:
        raise ValueError(
            "update_equivalent_types_dict: customized_equivalent_types should not be None; "
            "pass a list of sets of interchangeable types"
        )
    _equivalent = _EquivalentTypes(customized_equivalent_types)


def _check_unique_types(partition_types: list[Any]) -> None:
    seen: set[Any] = set()
    for partition_type in partition_types:
        matching = set(_equivalent.matching(partition_type))
        if seen & matching:
            raise ValueError(
                f"Invalid partition types: {partition_types}. Each type in the sequence must be "
                f"unique (counting equivalent types); {partition_type} repeats an earlier one"
            )
        seen |= matching


def _connected_in_order(partitions: Sequence[SourcePartition]) -> bool:
    return all(check_subgraphs_connected(a, b) for a, b in itertools.pairwise(partitions))


def find_sequential_partitions(
    gm: GraphModule,
    partition_types: list[Any],
    include_functional_equivalent: bool = True,
    filter_fn: Callable[[Node], bool] | None = None,
) -> list[tuple[SourcePartition, ...]]:
    """Every chain of partitions, one per type of ``partition_types`` in order, each feeding
    the next (e.g. ``[nn.Conv2d, nn.ReLU]`` -> ``[(conv_partition, relu_partition), ...]``)."""
    _check_unique_types(partition_types)
    per_type = []
    for partition_type in partition_types:
        found = get_source_partitions(gm.graph, _equivalent.matching(partition_type), filter_fn)
        per_type.append(list(itertools.chain.from_iterable(found.values())))
    return [chain for chain in itertools.product(*per_type) if _connected_in_order(chain)]


# control-flow op -> positions of its sub-graph (get_attr) arguments
_SUBGRAPH_ARGS: dict[Any, tuple[int, ...]] = {
    hop.cond: (1, 2),  # cond(pred, true_fn, false_fn, operands)
    hop.map_impl: (0,),  # map_impl(body_fn, xs, args)
    hop.scan: (0,),  # scan(combine_fn, init, xs, additional_inputs)
    hop.while_loop: (1,),  # while_loop(cond_fn, body_fn, carried, additional)
}


def control_flow_subgraphs(gm: GraphModule) -> list[tuple[str, GraphModule, Node]]:
    """(attribute name, sub-graph module, control-flow node) for the sub-graphs quantization
    reaches in ``gm``'s own graph (not nested deeper): both cond branches, the map and scan
    bodies and while_loop's body (its condition is never quantized)."""
    found = []
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target not in _SUBGRAPH_ARGS:
            continue
        for index in _SUBGRAPH_ARGS[node.target]:
            attr = node.args[index]
            assert isinstance(attr, Node) and attr.op == "get_attr", attr
            assert isinstance(attr.target, str)
            found.append((attr.target, gm.get_submodule(attr.target), node))
    return found  # type: ignore[return-value]


def bfs_trace_with_node_process(
    model: ExportedProgram | GraphModule, node_op: Callable[[Node], Any]
) -> None:
    """Call ``node_op`` on every node except placeholders and outputs, breadth first over the
    graph and its control-flow sub-graphs."""
    if not isinstance(model, (ExportedProgram, GraphModule)):
        raise TypeError(
            f"bfs_trace_with_node_process expects a GraphModule or ExportedProgram, got "
            f"{type(model).__name__}"
        )
    queue = [model.graph_module if isinstance(model, ExportedProgram) else model]
    while queue:
        gm = queue.pop(0)
        for node in gm.graph.nodes:
            if node.op not in ("placeholder", "output"):
                node_op(node)
        queue.extend(sub for _, sub, _ in control_flow_subgraphs(gm))


def collect_producer_nodes(node: Node) -> list[Node] | None:
    """``node`` and every node it is computed from, or None if a graph input is among them
    (then it cannot be folded to a constant). The walk stops at ``getattr`` calls."""
    nodes = [node]
    frontier = [node]
    while frontier:
        current = frontier.pop()
        for arg in [*current.args, *current.kwargs.values()]:
            if not isinstance(arg, Node):
                continue
            if arg.op == "placeholder":
                return None
            nodes.append(arg)
            if not (arg.op == "call_function" and arg.target is getattr):
                frontier.append(arg)
    return nodes
