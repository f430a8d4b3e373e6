"""The per-token dynamic activation quantization of 8da8w / 8da4w, inlined as aten ops.

``choose_qparams_per_token_asymmetric -> quantize_per_token -> dequantize_per_token`` is traced
once (``make_fx``) through the ops' own Python definitions in
``torch.ao.quantization.fx._decomposed`` into the aten ops they run (amin / amax, float64 scale,
round, clamp, ...), so the inlined copy computes bit-for-bit what the reference program does, on
any input rank. Inlined, it is ordinary float code to the x86 lowering's later passes (which
remove q/dq pairs that only feed float ops) and to Inductor, which fuses it. The quantization
alone (int8 tokens, scale, zero point) is inlined the same way for the integer GEMM of 8da8w.

int8 weight-only linears get an integer GEMM too, on a CPU with VNNI: each float token row is
rounded to 16-bit fixed point (``inline_token_q16``: one scale per row, max |x| / 32639, round
half to even) and split into two int8 halves, ``q = 256 hi + lo`` with ``hi, lo`` in
[-128, 127]; one ``aten._int_mm`` multiplies both halves, stacked as rows, by the int8
weights (one pass over the weights). This
is a lowering's rounding, not the reference's: its error bound is
``pt2q.tolerances.fixed16_dot_step``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.ao.quantization.fx import _decomposed as decomposed
from torch.fx import Graph, Node
from torch.fx.experimental.proxy_tensor import make_fx
from torch.fx.node import map_arg

__all__ = [
    "INT16_TOKEN_QMAX",
    "inline_graph",
    "inline_token_q",
    "inline_token_q16",
    "inline_token_u7",
    "inline_token_u8",
    "inline_token_qdq",
    "token_q",
    "token_u7",
    "token_u8",
    "traced",
]

# the largest |q| that splits into int8 halves: 256 * 127 + 127
INT16_TOKEN_QMAX = 32639


def token_q(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The reference's per-token int8 quantization of ``x``: (int8 tokens, scale, zero point)."""
    scale, zero_point = decomposed._choose_qparams_per_token_asymmetric_impl(x, torch.int8)
    xq = decomposed.quantize_per_token(x, scale, zero_point, -128, 127, torch.int8)
    return xq, scale, zero_point


def token_u8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``token_q`` shifted to uint8 for oneDNN (tokens ``xq + 128``, zero point unchanged: the
    caller adds 128), bit for bit: the same float64 products, rounding and clamp as
    ``quantize_per_token``, with the integer-valued result cast through float32 (Inductor's
    float64 -> int8 cast measured 3x slower than the rest of the loop)."""
    scale, zero_point = decomposed._choose_qparams_per_token_asymmetric_impl(x, torch.int8)
    v = x.mul(1.0 / scale).add(zero_point).round().clamp(-128, 127) + 128
    return v.to(torch.float32).to(torch.uint8), scale, zero_point


def token_u7(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``token_u8`` one bit coarser, for oneDNN without VNNI (``vpmaddubsw`` adds pairs of
    u8 x s8 products in int16, exact for tokens in [0, 127]): the reference's per-token scale
    doubled and its uint8 zero point ``z + 128`` halved (round half to even), as the static
    7-bit form does (``activation_forms.py``). Returns (uint8 tokens in [0, 127], scale,
    zero point - 128), so that ``integer.token_epilogue`` applies unchanged."""
    scale, zero_point = decomposed._choose_qparams_per_token_asymmetric_impl(x, torch.int8)
    scale7 = scale * 2.0
    zero7 = zero_point.add(128).mul(0.5).round()
    v = x.mul(1.0 / scale7).add(zero7).round().clamp(0, 127)
    return v.to(torch.float32).to(torch.uint8), scale7, zero7 - 128


def _token_qdq(x: torch.Tensor) -> torch.Tensor:
    xq, scale, zero_point = token_q(x)
    return decomposed.dequantize_per_token(
        xq, scale, zero_point, -128, 127, torch.int8, torch.float32
    )


def _token_q16(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, K) float32 -> ((2M, K) int8: hi rows then lo rows, (M, 1) float32 scale)."""
    amax = x.abs().amax(-1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
    scale = amax / INT16_TOKEN_QMAX
    q = torch.round(x / scale).clamp(-INT16_TOKEN_QMAX, INT16_TOKEN_QMAX).to(torch.int32)
    lo = torch.bitwise_and(q + 128, 255) - 128  # q mod 256, centred: [-128, 127]
    hi = torch.div(q - lo, 256, rounding_mode="floor")  # exact: q - lo is a multiple of 256
    return torch.cat([hi, lo]).to(torch.int8), scale


_ANY_ROWS = (((2, 8), torch.float32),)  # the token functions fit any rank (see ``traced``)


@functools.cache
def traced(fn: Callable[..., Any], *specs: tuple[tuple[int, ...], torch.dtype]) -> Graph:
    """``fn`` traced (``make_fx``) into aten ops on zero example tensors of ``specs`` (shape,
    dtype), once per (fn, specs). The token functions reduce over dim -1 with keepdim and are
    otherwise elementwise, so their graph, traced on (2, 8), fits any input rank."""
    return make_fx(fn)(*(torch.zeros(shape, dtype=dtype) for shape, dtype in specs)).graph


def inline_graph(source: Graph, graph: Graph, inputs: Sequence[Node], before: Node) -> Any:
    """Copy ``source`` (a ``traced`` graph) into ``graph`` before ``before``, its placeholders reading ``inputs`` in
    order; returns what its output returns, as nodes of ``graph``."""
    env: dict[Node, Node] = {}
    feed = iter(inputs)
    with graph.inserting_before(before):
        for node in source.nodes:
            if node.op == "placeholder":
                env[node] = next(feed)
            elif node.op == "output":
                return map_arg(node.args[0], lambda n: env[n])
            else:
                env[node] = graph.node_copy(node, lambda n: env[n])
    raise AssertionError("traced graph has no output")


def inline_token_qdq(graph: Graph, x: Node, before: Node) -> Node:
    """Insert the traced per-token q/dq of ``x`` before ``before`` (a node of ``graph``);
    returns its output node (the dequantized float32 tokens)."""
    return inline_graph(traced(_token_qdq, *_ANY_ROWS), graph, [x], before)


def inline_token_q(graph: Graph, x: Node, before: Node) -> tuple[Node, Node, Node]:
    """Insert the traced per-token quantization of ``x`` (no dequantize) before ``before``;
    returns its (int8 tokens, scale, zero point) nodes, scale / zero point of shape (..., 1)."""
    xq, scale, zero_point = inline_graph(traced(token_q, *_ANY_ROWS), graph, [x], before)
    return xq, scale, zero_point


def inline_token_u8(graph: Graph, x: Node, before: Node) -> tuple[Node, Node, Node]:
    """``inline_token_q`` with ``token_u8``: (uint8 tokens, scale, zero point) nodes."""
    xu, scale, zero_point = inline_graph(traced(token_u8, *_ANY_ROWS), graph, [x], before)
    return xu, scale, zero_point


def inline_token_u7(graph: Graph, x: Node, before: Node) -> tuple[Node, Node, Node]:
    """``inline_token_q`` with ``token_u7``: (7-bit uint8 tokens, scale, zero point) nodes."""
    xu, scale, zero_point = inline_graph(traced(token_u7, *_ANY_ROWS), graph, [x], before)
    return xu, scale, zero_point


def inline_token_q16(graph: Graph, x2: Node, before: Node) -> tuple[Node, Node]:
    """Insert the 16-bit fixed-point split of ``x2`` (a 2-D (M, K) float32 node) before
    ``before``; returns its ((2M, K) int8 halves, hi rows first; (M, 1) float32 scale) nodes."""
    halves, scale = inline_graph(traced(_token_q16, *_ANY_ROWS), graph, [x2], before)
    return halves, scale
