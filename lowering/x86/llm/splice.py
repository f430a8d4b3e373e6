"""Splicing a lowered linear into the graph: its leading dims and its replacement.

Shared by the x86 LLM rewrites (``rewrite.py`` onto torch's weight kernels, ``integer.py`` onto
``aten._int_mm``): both compute on (M, K) rows and put the result back as the linear's
(..., N), plus its bias.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.fx import Node

from pt2q.lowering.llm.graph import copy_meta
from pt2q.lowering.llm.match import LlmLinear

__all__ = ["lead_dims", "replace_linear"]

aten = torch.ops.aten


def lead_dims(graph: torch.fx.Graph, x: Node, shape: Sequence[Any]) -> list[Any]:
    """The sizes of all but the last dim of ``x`` (SymInt dims read with aten.sym_size)."""
    return [
        graph.call_function(aten.sym_size.int, (x, i)) if isinstance(s, torch.SymInt) else int(s)
        for i, s in enumerate(shape[:-1])
    ]


def replace_linear(lin: LlmLinear, y: Node, lead: list[Any], n: int) -> Node:
    """``y`` (M, N) reshaped to the linear's (..., N), plus its bias, replaces the linear."""
    node, graph = lin.node, lin.node.graph
    with graph.inserting_before(node):
        y = graph.call_function(aten.reshape.default, (y, [*lead, n]))
        if lin.bias is not None:
            y = graph.call_function(aten.add.Tensor, (y, lin.bias))
    copy_meta(y, node)
    node.replace_all_uses_with(y)
    graph.erase_node(node)
    return y
