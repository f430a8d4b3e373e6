"""Graph helpers shared by the LLM passes of every backend: report records, packed buffers."""

from __future__ import annotations

import torch
from torch.fx import GraphModule, Node

from pt2q.qdq.decision import LoweringStatus, NodeDecision
from pt2q.qdq.engine import NoMatch
from pt2q.qdq.meta import copy_handle, get_handle
from pt2q.qdq.views import token_q, weight_q

__all__ = ["TOKEN_REASON", "decision", "buffer", "claims", "copy_meta"]

# Why the per-token activation ops of 8da* stay in reference form (formatted with the kernel).
TOKEN_REASON = (
    "per-token activation quantization runs as its reference op (exact, the same math as the "
    "program); {kernel} reads its result"
)


def decision(
    node: Node, status: LoweringStatus, kernel: str | None, reason: str = ""
) -> NodeDecision:
    """The NodeDecision of ``node`` with its numeric debug handle (None when it has none)."""
    return NodeDecision(node.name, str(node.target), get_handle(node), status, kernel, reason)


def buffer(gm: GraphModule, before: Node, name: str, value: torch.Tensor) -> Node:
    """Register ``value`` as buffer ``_pt2q_llm_<name>`` of ``gm``; a get_attr before ``before``."""
    attr = f"_pt2q_llm_{name}"
    gm.register_buffer(attr, value)
    with gm.graph.inserting_before(before):
        return gm.graph.get_attr(attr)


def claims(node: Node) -> bool:
    """Whether a linear that failed to match is still an LLM pattern (its reason is reported):
    per-token dynamic activations or per-group weights."""
    try:
        if token_q(node.args[0]) is not None:
            return True
    except NoMatch:
        return True  # a dequantize_per_token fed by another form
    weight = weight_q(node.args[1])
    return weight is not None and weight.group_size is not None


def copy_meta(new: Node, old: Node) -> None:
    """Give ``new`` (replacing ``old``) its shape, module stack, trace and debug handle."""
    new.meta.update(
        {k: v for k, v in old.meta.items() if k in ("val", "nn_module_stack", "stack_trace")}
    )
    copy_handle(old, new)
