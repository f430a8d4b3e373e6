"""Dangling q/dq pairs: a quantize whose every dequantize feeds only float ops.

``x -> quantize -> dequantize -> float op`` rounds ``x`` to the int8 grid and back for a consumer
that computes in float: it costs a pass over the tensor and accuracy, and buys nothing. A
backend says which consumers read int8 (``reads_int8(consumer, dq)``); every pair none of whose
consumers does is removed (each dequantize replaced by the quantize's input), on the caller's
graph, which should be a private copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch.fx import GraphModule, Node

from pt2q.qdq.ops import is_dequantize, is_quantize

__all__ = ["RemovedPair", "remove_dangling_qdq"]


@dataclass(frozen=True)
class RemovedPair:
    """One removed quantize, the dequantizes that went with it, and their float consumers."""

    quantize: str
    dequantizes: tuple[str, ...]
    consumers: tuple[str, ...]


def remove_dangling_qdq(
    gm: GraphModule, reads_int8: Callable[[Node, Node], bool]
) -> list[RemovedPair]:
    """Remove each quantize of an activation whose dequantizes feed no ``reads_int8`` consumer."""
    removed: list[RemovedPair] = []
    for q in list(gm.graph.nodes):
        if not is_quantize(q) or not isinstance(q.args[0], Node) or q.args[0].op == "get_attr":
            continue
        dqs = list(q.users)
        if not dqs or not all(is_dequantize(dq) and dq.args[0] is q for dq in dqs):
            continue
        consumers = [(u, dq) for dq in dqs for u in dq.users]
        if any(u.op == "output" or reads_int8(u, dq) for u, dq in consumers):
            continue
        for dq in dqs:
            dq.replace_all_uses_with(q.args[0])
            gm.graph.erase_node(dq)
        gm.graph.erase_node(q)
        removed.append(
            RemovedPair(q.name, tuple(d.name for d in dqs), tuple(u.name for u, _ in consumers))
        )
    if removed:
        gm.recompile()
    return removed
