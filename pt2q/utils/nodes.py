"""Node predicates and pattern tracing of ``torchao.quantization.pt2e.utils`` (torchao exports
these underscore names in its ``__all__``; quantizers copied from it import them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.fx import GraphModule, Node

__all__ = [
    "_filter_sym_size_users",
    "_get_aten_graph_module_for_pattern",
    "_is_conv_node",
    "_is_conv_transpose_node",
    "_is_sym_size_node",
]

aten = torch.ops.aten

_CONV = (
    aten.conv1d.default,
    aten.conv2d.default,
    aten.conv3d.default,
    aten.conv1d.padding,
    aten.conv2d.padding,
    aten.conv3d.padding,
)
_CONV_TRANSPOSE = (
    aten.conv_transpose1d.default,
    aten.conv_transpose2d.input,
    aten.conv_transpose3d.input,
)
_SYM_SIZE = (aten.sym_size.default, aten.sym_size.int, aten.sym_numel.default)


def _is_conv_node(n: Node) -> bool:
    """A call of ``aten.conv{1,2,3}d`` (any padding overload)."""
    return n.op == "call_function" and n.target in _CONV


def _is_conv_transpose_node(n: Node) -> bool:
    """A call of ``aten.conv_transpose{1,2,3}d``."""
    return n.op == "call_function" and n.target in _CONV_TRANSPOSE


def _is_sym_size_node(node: Node) -> bool:
    """A call of ``aten.sym_size`` / ``aten.sym_numel`` (shape reads, not data uses)."""
    return node.op == "call_function" and node.target in _SYM_SIZE


def _filter_sym_size_users(node: Node) -> list[Node]:
    """The users of ``node`` that read its data (shape-only ``sym_size`` users dropped)."""
    return [user for user in node.users if not _is_sym_size_node(user)]


def _get_aten_graph_module_for_pattern(
    pattern: Callable[..., Any],
    example_inputs: tuple[Any, ...],
    is_cuda: bool = False,
    **kwargs: Any,
) -> GraphModule:
    """Export ``pattern`` (a module or callable wrapped in ``WrapperModule``) and return its
    aten graph without dead code, unused ``copy_`` write-backs or export's guard call, ready
    to be a search or replacement pattern of ``torch.fx.subgraph_rewriter``."""
    from pt2q.export_utils import WrapperModule

    if is_cuda:
        example_inputs = tuple(
            x.cuda() if isinstance(x, torch.Tensor) else x for x in example_inputs
        )
    module = pattern if isinstance(pattern, torch.nn.Module) else WrapperModule(pattern)
    gm = torch.export.export(module, example_inputs, kwargs, strict=True).module()
    graph = gm.graph
    for node in list(graph.nodes):
        write_back = node.target == aten.copy_.default and not node.users
        guard = node.op == "call_module" and node.name == "_guards_fn"
        if write_back or guard:
            graph.erase_node(node)
    if hasattr(gm, "_guards_fn"):
        delattr(gm, "_guards_fn")
    graph.eliminate_dead_code()
    gm.recompile()
    return gm
