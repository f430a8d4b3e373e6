"""Automatic numeric debug handles from ``node.meta["from_node"]`` provenance.

torchao 0.18 needs no explicit handle step: every node created by ``ExportedProgram.module()``,
prepare, convert or a pass records where it came from in ``node.meta["from_node"]`` (a chain of
``torch.fx.traceback.NodeSource``), and the greatest ancestor names a node of the exported
program's graph. pt2q derives handles from that ancestor when a graph carries no structural
handle (``generate_numeric_debug_handle``):

    debug info(n) = NodeSourceDebugInfo(ancestor name, ancestor graph_id)   torchao's key
    handle(n)     = first 48 bits of sha256("from_node|<name>|<graph_id>")  pt2q's int handle

Placeholders, the output, nodes without provenance (guards) and nodes the unlift created (the
parameters' get_attr) get none, as in torchao. ``graph_id`` is the Python id of the exported
graph, so provenance handles match only between programs made from the *same* live
``ExportedProgram`` in one process; structural handles (``generate_numeric_debug_handle``)
also survive separate exports, save/load and re-export, and win when both graphs carry them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch.fx import GraphModule, Node

from pt2q.debugger.handles import CUSTOM_KEY, NUMERIC_DEBUG_HANDLE_KEY, get_handle, set_handle
from pt2q.qdq.meta import DERIVED_HANDLE_KEY

__all__ = [
    "FROM_NODE_KEY",
    "NodeSourceDebugInfo",
    "node_source_debug_info",
    "provenance_handle",
    "has_structural_handles",
    "with_handles",
    "DERIVED_KEY",
]

FROM_NODE_KEY = "from_node"
# Marks a handle pt2q derived from provenance (in the copy's node.meta["custom"]).
DERIVED_KEY = DERIVED_HANDLE_KEY
_UNLIFT_PASS = "ExportedProgram.module().unlift()"


@dataclass(frozen=True)
class NodeSourceDebugInfo:
    """Where a node comes from: ``name`` and ``graph_id`` of its exported-graph ancestor."""

    name: str
    graph_id: int


def node_source_debug_info(node: Node) -> NodeSourceDebugInfo | None:
    """The provenance key of ``node``, or None when it has no exported-graph ancestor."""
    if node.op in ("placeholder", "output"):
        return None
    chain = node.meta.get(FROM_NODE_KEY)
    if not chain:
        return None
    source = chain[-1]
    if source.pass_name == _UNLIFT_PASS:
        return None
    while source.from_node:
        source = source.from_node[-1]
    return NodeSourceDebugInfo(str(source.name), int(source.graph_id))


def provenance_handle(info: NodeSourceDebugInfo) -> int:
    """The int handle pt2q uses internally for ``info`` (stable within one process)."""
    digest = hashlib.sha256(f"from_node|{info.name}|{info.graph_id}".encode()).hexdigest()
    return int(digest, 16) >> (256 - 48)


def has_structural_handles(gm: GraphModule) -> bool:
    """Whether any node of ``gm`` carries a handle not derived from provenance."""
    for node in gm.graph.nodes:
        custom = node.meta.get(CUSTOM_KEY)
        if get_handle(node) is not None and not (
            isinstance(custom, dict) and custom.get(DERIVED_KEY)
        ):
            return True
    return False


def _derive(graph: torch.fx.Graph) -> dict[int, NodeSourceDebugInfo]:
    """Write provenance handles into ``graph``'s node meta (a fresh ``custom`` dict per node,
    so meta shared with another graph by a shallow copy is not touched)."""
    infos: dict[int, NodeSourceDebugInfo] = {}
    for node in graph.nodes:
        custom = node.meta.get(CUSTOM_KEY)
        custom = dict(custom) if isinstance(custom, dict) else {}
        custom.pop(NUMERIC_DEBUG_HANDLE_KEY, None)
        custom.pop(DERIVED_KEY, None)
        node.meta[CUSTOM_KEY] = custom
        info = node_source_debug_info(node) if node.op == "call_function" else None
        if info is None:
            continue
        handle = provenance_handle(info)
        set_handle(node, handle)
        custom[DERIVED_KEY] = True
        infos[handle] = info
    return infos


def with_handles(
    gm: GraphModule, structural: bool, in_place: bool = False
) -> tuple[GraphModule, dict[int, NodeSourceDebugInfo]]:
    """``gm`` ready for the debugger, and {handle: NodeSourceDebugInfo} of its nodes.

    With ``structural`` the graph's own handles are used as they are (``gm`` returned; the
    dict maps the handles whose nodes also have provenance). Otherwise handles are derived from
    provenance on a copy that shares ``gm``'s parameters and buffers (``in_place``: on ``gm``
    itself, for a copy the caller already owns); the user's graph is never changed.
    """
    if structural:
        infos: dict[int, NodeSourceDebugInfo] = {}
        for node in gm.graph.nodes:
            handle, info = get_handle(node), node_source_debug_info(node)
            if handle is not None and info is not None:
                infos.setdefault(handle, info)
        return gm, infos
    if not in_place:
        graph = torch.fx.Graph()
        graph._codegen = gm.graph._codegen
        out = graph.graph_copy(gm.graph, {})
        graph.output(out)
        gm = GraphModule(gm, graph, class_name=type(gm).__name__)
    return gm, _derive(gm.graph)
