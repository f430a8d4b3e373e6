"""The per-token dynamic activation quantization of 8da8w / 8da4w, inlined as aten ops.

``choose_qparams_per_token_asymmetric -> quantize_per_token -> dequantize_per_token`` is traced
once (``make_fx``) through the ops' own Python definitions in
``torch.ao.quantization.fx._decomposed`` into the aten ops they run (amin / amax, float64 scale,
round, clamp, ...), so the inlined copy computes bit-for-bit what the reference program does, on
any input rank. Inlined, it is ordinary float code to the x86 lowering's later passes (which
remove q/dq pairs that only feed float ops) and to Inductor, which fuses it.
"""

from __future__ import annotations

import functools

import torch
from torch.ao.quantization.fx import _decomposed as decomposed
from torch.fx import Graph, Node
from torch.fx.experimental.proxy_tensor import make_fx

__all__ = ["inline_token_qdq"]


def _token_qdq(x: torch.Tensor) -> torch.Tensor:
    scale, zero_point = decomposed._choose_qparams_per_token_asymmetric_impl(x, torch.int8)
    xq = decomposed.quantize_per_token(x, scale, zero_point, -128, 127, torch.int8)
    return decomposed.dequantize_per_token(
        xq, scale, zero_point, -128, 127, torch.int8, torch.float32
    )


@functools.cache
def _traced() -> Graph:
    # reductions over dim -1 with keepdim and elementwise ops only: the graph fits any rank
    return make_fx(_token_qdq)(torch.zeros(2, 8)).graph


def inline_token_qdq(graph: Graph, x: Node, before: Node) -> Node:
    """Insert the traced per-token q/dq of ``x`` before ``before``; returns its output node."""
    env: dict[Node, Node] = {}
    with graph.inserting_before(before):
        for node in _traced().nodes:
            if node.op == "placeholder":
                env[node] = x
            elif node.op == "output":
                return env[node.args[0]]
            else:
                env[node] = graph.node_copy(node, lambda n: env[n])
    raise AssertionError("traced per-token q/dq graph has no output")
