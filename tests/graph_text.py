"""Compact, stable text of a graph for golden tests: one line per call node, float literals
masked (their exact values are checked by numerics tests, not by goldens)."""

from __future__ import annotations

import torch
from torch.fx import GraphModule, Node

__all__ = ["graph_text", "count_ops", "call_sequence"]


def _arg(a: object) -> str:
    if isinstance(a, Node):
        return a.name
    if isinstance(a, float):
        return "<f>"
    if isinstance(a, (list, tuple)):
        return "[" + ", ".join(_arg(x) for x in a) + "]"
    return str(a)


def _target(node: Node) -> str:
    t = node.target
    if isinstance(t, torch._ops.OpOverload):
        ns = t.namespace
        short = {"aten": "", "quantized_decomposed": "qd."}.get(ns, ns + ".")
        return f"{short}{t._opname}.{t._overloadname}".replace(".default", "")
    return getattr(t, "__name__", str(t))


def graph_text(gm: GraphModule) -> str:
    """``name = target(args)`` per call_function / call_module node, in graph order."""
    lines = []
    for n in gm.graph.nodes:
        if n.op in ("call_function", "call_module"):
            if n.op == "call_module" and n.target == "_guards_fn":
                continue
            lines.append(f"{n.name} = {_target(n)}({', '.join(_arg(a) for a in n.args)})")
        elif n.op == "output":
            lines.append(f"return {_arg(n.args[0])}")
    return "\n".join(lines)


def call_sequence(gm: GraphModule) -> list[str]:
    """Targets of call_function nodes in graph order (short names)."""
    return [_target(n) for n in gm.graph.nodes if n.op == "call_function"]


def count_ops(gm: GraphModule) -> dict[str, int]:
    """Occurrences of each call_function target (short names)."""
    out: dict[str, int] = {}
    for t in call_sequence(gm):
        out[t] = out.get(t, 0) + 1
    return out
