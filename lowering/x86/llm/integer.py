"""Integer GEMMs for the x86 LLM pass: ``aten._int_mm`` on a CPU with VNNI / AMX.

8da8w: the inlined per-token quantization's int8
tokens go to ``aten._int_mm`` with the int8 weights (exact int32 sums), and the token zero
point, token scale and weight scales are applied to its result (``pack.py``). Measured here
(AVX-512 VNNI, 2 threads, K 1024, N 2816, weights in cache) it is 3x faster than
``_weight_int8pack_mm`` at one token and 8x at 128 (0.043 vs 0.136 ms, 0.87 vs 7.5 ms); in the
Llama-style decode step of ``bench/llm.py``, weights streamed from memory, 8.5 vs 11.9 ms.
Without VNNI ``_int_mm`` is 20-35x slower than float32 (issue 12's AVX2 measurement), so 8da8w
keeps the weight kernel there in the eager LLM pass; the x86 lowering's oneDNN ``qlinear`` form
(``rewrite_qlinear_tokens``) runs there on 7-bit tokens (``tokens.token_u7``), exact in
``vpmaddubsw``'s int16 pairs: on ``ONEDNN_MAX_CPU_ISA=AVX2`` kernels here 2.3-2.4x faster than
the float32 linear, where the bf16 weight kernel is 1.3-1.7x slower (BERT / MiniLM shapes).

With VNNI and ``compute_dtype=torch.bfloat16``, int8 weight-only linears run ``aten._int_mm``
as well, on their float tokens rounded to 16-bit fixed point (``tokens.inline_token_q16``: two
int8 halves stacked as rows, one ``_int_mm``, exact int32 sums, then
``(256 acc_hi + acc_lo) * scale_x * scale``). That rounding is finer than bf16's for all but
tokens whose largest element is > 128x their typical one (``pt2q.tolerances.fixed16_dot_step``
bounds it). Measured on that decoder: prefill (128 tokens) 77-88 ms vs 225 ms with
``_weight_int8pack_mm`` (fp32: 115-135 ms); a decode step about as fast as that kernel (11.6 vs
11.9 ms).

8da4w over at least ``INT16_WEIGHT_MIN_ROWS`` tokens per call (a prefill, statically known) on
a CPU with VNNI runs ``aten._int_mm`` too: its int4 groups, stored as planar nibbles, are
rebuilt each call as 16-bit fixed-point weights (one unit per output row: its largest group
scale / 4079; ``pack.pack_int4_as_int16``) split into int8 halves, multiplied exactly with the
int8 tokens (four products: two halves of K, two halves of w16) and summed in int64
(``_int16_weight_linear``). Rounding the weights to that unit is the only difference from the
reference (``pt2q.tolerances.fixed16_weight_dot_step``). A decode step (few rows) keeps the int4
weight kernel: rebuilding every weight per token costs more than it saves.

Each ``rewrite_*`` here replaces one linear (``rewrite.rewrite_llm_linears`` picks which, with
the ``uses_*`` predicates, and keeps the report).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
from torch.fx import Graph, GraphModule, Node

from pt2q.lowering.llm.graph import buffer
from pt2q.lowering.llm.match import LlmLinear, NotLlm, llm_linear
from pt2q.lowering.x86.isa import CpuInt8Isa
from pt2q.lowering.x86.llm.pack import PackedWeight, int16_weight_problem, int16_weights
from pt2q.lowering.x86.llm.splice import lead_dims, replace_linear
from pt2q.lowering.x86.llm.tokens import inline_graph, token_q, traced
from pt2q.qdq.ops import qd

__all__ = [
    "INT16_WEIGHT_MIN_ROWS",
    "rewrite_int16_tokens",
    "rewrite_int16_weights",
    "rewrite_int_mm",
    "qlinear_token_weights",
    "rewrite_qlinear_tokens",
    "token_epilogue",
    "token_rows",
    "uses_int16_tokens",
    "uses_int16_weights",
    "uses_int8_tokens",
    "is_8da8w",
    "per_token_linears",
]

aten = torch.ops.aten
F32 = torch.float32


def rewrite_int_mm(
    gm: GraphModule, lin: LlmLinear, tokens: tuple[Node, Node, Node], packed: PackedWeight
) -> Node:
    """``linear(dq(xq), dq(w), b)`` as ``(_int_mm(xq, w.T) - z * sum_k w) * s_x * s_w + b``."""
    node, graph = lin.node, lin.node.graph
    out_shape = node.meta["val"].shape
    w, s_w, sums = (
        buffer(gm, node, f"{node.name}_{part}", t)
        for part, t in zip(("weight", "scales", "sums"), packed.tensors, strict=True)
    )
    xq, s_x, z = tokens  # xq: (M, K), quantized from x already reshaped (see token_rows)
    assert lin.tokens is not None
    with graph.inserting_before(node):
        lead = lead_dims(graph, lin.tokens.source, out_shape)
        acc = graph.call_function(
            aten._int_mm.default, (xq, graph.call_function(aten.t.default, (w,)))
        )
        z2 = graph.call_function(aten.reshape.default, (z, [-1, 1]))
        z2 = graph.call_function(aten._to_copy.default, (z2,), {"dtype": torch.int32})
        acc = graph.call_function(
            aten.sub.Tensor, (acc, graph.call_function(aten.mul.Tensor, (z2, sums)))
        )
        y = graph.call_function(aten._to_copy.default, (acc,), {"dtype": torch.float32})
        s2 = graph.call_function(aten.reshape.default, (s_x, [-1, 1]))  # float64 (its choose)
        s2 = graph.call_function(aten._to_copy.default, (s2,), {"dtype": torch.float32})
        y = graph.call_function(
            aten.mul.Tensor, (graph.call_function(aten.mul.Tensor, (y, s2)), s_w)
        )
    return replace_linear(lin, y, lead, packed.n)


def rewrite_qlinear_tokens(
    gm: GraphModule,
    lins: Sequence[LlmLinear],
    tokens: tuple[Node, Node, Node],
    packed: Sequence[PackedWeight],
) -> list[Node]:
    """8da8w's ``linear(dq(xq), dq(w), b)`` for Inductor's oneDNN ``qlinear``: ``tokens`` are
    ``tokens.token_u8``'s (uint8 ``xq + 128``, scale, zero point ``z``), dequantized with scale 1
    and zero point 0, so Inductor's int8 linear pattern turns ``linear(dq(xu), dq(w))`` into one
    prepacked ``onednn.qlinear_pointwise`` whose float output is the integer sums times the
    weight scales; the token zero point and scale follow:
    ``(acc - (z + 128) * sum_k(w) * s_w) * s_x + b``. oneDNN's qlinear takes one activation
    scale per call (a per-token scale raises "act scale/zp size should be 1"), hence scale 1;
    ``aten._int_mm`` takes its weights unpacked on every call.

    ``lins`` (with their ``packed`` weights) all read ``tokens`` (q / k / v of one activation):
    one qlinear over their weights stacked along N (per output channel: the same integer sums,
    scales and epilogue), each linear then its slice of the columns; one call instead of three
    small ones (MiniLM's 256 x 384 x 384 projections)."""
    first = lins[0].node
    graph = first.graph
    stacked = [
        torch.cat(parts) if len(lins) > 1 else parts[0]
        for parts in zip(*(qlinear_token_weights(*p.tensors[:2]) for p in packed), strict=True)
    ]
    names = ("weight", "scales", "zeros", "scaled_sums")
    consts = [
        buffer(gm, first, f"{first.name}_{part}", t) for part, t in zip(names, stacked, strict=True)
    ]
    assert lins[0].tokens is not None
    with graph.inserting_before(first):
        lead = lead_dims(graph, lins[0].tokens.source, first.meta["val"].shape)
    y = inline_graph(_qlinear_tokens_graph(), graph, [*tokens, *consts], first)
    parts, start = [y], 0
    if len(lins) > 1:  # all sliced before replace_linear erases the first linear
        parts = []
        for p in packed:
            with graph.inserting_before(first):
                parts.append(graph.call_function(aten.slice.Tensor, (y, 1, start, start + p.n)))
            start += p.n
    return [
        replace_linear(lin, part, lead, p.n)
        for lin, part, p in zip(lins, parts, packed, strict=True)
    ]


def _qlinear_tokens(
    xu: torch.Tensor,
    s_x: torch.Tensor,
    z: torch.Tensor,
    w: torch.Tensor,
    w_scale: torch.Tensor,
    w_zero: torch.Tensor,
    scaled_sums: torch.Tensor,
) -> torch.Tensor:
    """(M, N) float32 of ``tokens.token_u8``'s (M, K) uint8 tokens (scale, zero point (M, 1))
    against int8 weights ``w`` (N, K): the dequantize -> linear Inductor lowers to qlinear,
    then the token zero point and scale."""
    x_dq = qd.dequantize_per_tensor.default(xu, 1.0, 0, 0, 255, torch.uint8)
    w_dq = qd.dequantize_per_channel.default(w, w_scale, w_zero, 0, -128, 127, torch.int8)
    return token_epilogue(aten.linear.default(x_dq, w_dq), s_x, z, scaled_sums)


def qlinear_token_weights(q: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The constants of the qlinear token form for int8 weights ``q`` (N, K) and per-channel
    ``scale``: (q, float32 scales (N,), zero points (N,) int64, sum_k(q) * scale (N,))."""
    s32 = scale.reshape(-1).to(torch.float32)
    zeros = torch.zeros(q.shape[0], dtype=torch.int64)
    return q, s32, zeros, q.sum(1, dtype=torch.int32).to(torch.float32) * s32


def token_epilogue(
    acc: torch.Tensor, s_x: torch.Tensor, z: torch.Tensor, scaled_sums: torch.Tensor
) -> torch.Tensor:
    """``(acc - (z + 128) * scaled_sums) * s_x``: the qlinear's float output (integer sums of
    the uint8 tokens times the weight scales) back to the token's zero point and scale."""
    z2 = aten._to_copy.default(aten.reshape.default(aten.add.Tensor(z, 128), [-1, 1]), dtype=F32)
    s2 = aten._to_copy.default(aten.reshape.default(s_x, [-1, 1]), dtype=F32)  # float64 before
    return aten.mul.Tensor(aten.sub.Tensor(acc, aten.mul.Tensor(z2, scaled_sums)), s2)


@functools.cache
def _qlinear_tokens_graph() -> Graph:
    """``_qlinear_tokens`` as an FX graph of the ops it calls (symbolic trace: the dequantizes
    stay ops, for Inductor's pattern)."""
    return torch.fx.symbolic_trace(_qlinear_tokens).graph


def token_rows(lin: LlmLinear) -> Node:
    """``lin``'s float input as (M, K) rows, inserted before ``lin``: the integer tokens for
    ``aten._int_mm`` are computed on it, so Inductor allocates them (M, K) row-major. A view of
    a (1, 1, K) buffer came out of Inductor with strides (0, 1), and ``_int_mm`` on CPU reads a
    one-row operand's row stride as its leading dimension: wrong sums (torch 2.13)."""
    x = lin.x if lin.tokens is None else lin.tokens.source
    graph = lin.node.graph
    with graph.inserting_before(lin.node):
        return graph.call_function(aten.reshape.default, (x, [-1, lin.weight.q.shape[1]]))


def rewrite_int16_tokens(
    gm: GraphModule, lin: LlmLinear, packed: PackedWeight, halves: tuple[Node, Node]
) -> Node:
    """``linear(x, dq(w), b)`` as ``(256 acc_hi + acc_lo) * s_x * s_w + b``, ``acc`` the
    ``_int_mm`` of x's 16-bit fixed-point ``halves`` (``inline_token_q16``: stacked int8
    halves, scale) and the int8 weight."""
    node, graph = lin.node, lin.node.graph
    out_shape = node.meta["val"].shape
    n = packed.n
    w, s_w = (
        buffer(gm, node, f"{node.name}_{part}", t)
        for part, t in zip(("weight", "scales"), packed.tensors, strict=True)
    )
    with graph.inserting_before(node):
        lead = lead_dims(graph, lin.x, out_shape)
    stacked, s_x = halves
    with graph.inserting_before(node):
        # one call on both halves: decode is bound by reading the weights, which two calls
        # (2 x (1, K)) read twice (measured: 11.6 vs 12.2 ms a Llama decode step)
        acc = graph.call_function(
            aten._int_mm.default, (stacked, graph.call_function(aten.t.default, (w,)))
        )
        acc = graph.call_function(aten.reshape.default, (acc, [2, -1, n]))
        hi, lo = (
            graph.call_function(
                aten._to_copy.default,
                (graph.call_function(aten.select.int, (acc, 0, i)),),
                {"dtype": torch.float32},
            )
            for i in (0, 1)
        )
        y = graph.call_function(
            aten.add.Tensor, (graph.call_function(aten.mul.Tensor, (hi, 256.0)), lo)
        )
        y = graph.call_function(
            aten.mul.Tensor, (graph.call_function(aten.mul.Tensor, (y, s_x)), s_w)
        )
    return replace_linear(lin, y, lead, n)


# 8da4w runs the int16-weight _int_mm path from this many rows (tokens) per call, statically
# known: below it (a decode step) rebuilding the weights each call costs more than it saves.
# Measured per linear (K 1024, N 2816, 12 weights streamed, 2 threads) vs the int4 kernel on
# bf16: 0.41x at 8 rows, 0.70x at 16, 1.05x at 32, 1.55x at 64, 2.26x at 128.
INT16_WEIGHT_MIN_ROWS = 32


def _int16_weight_linear(
    xq: torch.Tensor,
    z: torch.Tensor,
    s_x: torch.Tensor,
    planar: torch.Tensor,
    mult: torch.Tensor,
    sums: torch.Tensor,
    unit: torch.Tensor,
) -> torch.Tensor:
    """(M, N) float32 of int8 tokens ``xq`` (M, K) with zero point ``z`` and scale ``s_x``
    (M, 1) against ``pack_int4_as_int16``'s weight: four exact int32 products, one per half of
    K and int8 half of w16, summed in int64."""
    a, b, c, d = int16_weights(planar, mult)
    h = planar.shape[1]
    x1, x2 = xq[:, :h], xq[:, h:]
    wide = torch.int64
    acc = torch._int_mm(x1, a.t()).to(wide) + torch._int_mm(x2, c.t()).to(wide)
    acc = 256 * acc + torch._int_mm(x1, b.t()).to(wide) + torch._int_mm(x2, d.t()).to(wide)
    acc = acc - z.to(wide) * sums.to(wide)
    return acc.to(torch.float32) * s_x.to(torch.float32) * unit


def rewrite_int16_weights(
    gm: GraphModule, lin: LlmLinear, tokens: tuple[Node, Node, Node], packed: PackedWeight
) -> Node:
    """8da4w's linear as ``_int16_weight_linear`` of its (M, K) int8 tokens."""
    node, graph = lin.node, lin.node.graph
    parts = ("planar", "mult", "sums", "unit")
    consts = [
        buffer(gm, node, f"{node.name}_{part}", t)
        for part, t in zip(parts, packed.tensors, strict=True)
    ]
    xq, s_x, z = tokens
    inputs = [xq, z, s_x, *consts]
    rows, k = _static_rows(lin), lin.weight.q.shape[1]
    assert rows is not None and lin.tokens is not None
    example_q, example_s, example_z = token_q(torch.zeros(rows, k))
    specs = tuple((tuple(t.shape), t.dtype) for t in (example_q, example_z, example_s))
    specs += tuple((tuple(t.shape), t.dtype) for t in packed.tensors)
    with graph.inserting_before(node):
        lead = lead_dims(graph, lin.tokens.source, node.meta["val"].shape)
    y = inline_graph(traced(_int16_weight_linear, *specs), graph, inputs, node)
    return replace_linear(lin, y, lead, packed.n)


def _static_rows(lin: LlmLinear) -> int | None:
    """Rows (tokens) per call of ``lin``, when every leading dim is static."""
    dims = lin.node.meta["val"].shape[:-1]
    return None if any(isinstance(d, torch.SymInt) for d in dims) else math.prod(dims)


def uses_int16_weights(lin: LlmLinear, isa: CpuInt8Isa) -> bool:
    """Whether ``lin`` (8da4w) runs ``_int16_weight_linear``: VNNI / AMX, int8 tokens, a weight
    ``pack_int4_as_int16`` takes, and at least ``INT16_WEIGHT_MIN_ROWS`` rows per call (static)."""
    t, rows = lin.tokens, _static_rows(lin)
    return (
        isa.exact_u8s8
        and t is not None
        and (t.dtype, t.qmin, t.qmax) == (torch.int8, -128, 127)
        and int16_weight_problem(lin.weight) is None
        and rows is not None
        and rows >= INT16_WEIGHT_MIN_ROWS
    )


def uses_int16_tokens(lin: LlmLinear, isa: CpuInt8Isa, compute_dtype: torch.dtype) -> bool:
    """Whether ``lin`` (int8 weight-only) runs ``aten._int_mm`` on 16-bit fixed-point tokens:
    VNNI / AMX, and bf16 compute (the rounding it replaces)."""
    return (
        isa.exact_u8s8
        and compute_dtype == torch.bfloat16
        and lin.tokens is None
        and lin.weight.bits == 8
        and lin.x.meta["val"].dtype == torch.float32
    )


def is_8da8w(lin: LlmLinear) -> bool:
    """Whether ``lin`` is 8da8w: per-token int8 tokens in [-128, 127], int8 weights."""
    t = lin.tokens
    return (
        t is not None
        and lin.weight.bits == 8
        and (t.dtype, t.qmin, t.qmax) == (torch.int8, -128, 127)
    )


def per_token_linears(gm: GraphModule) -> dict[Node, LlmLinear]:
    """The 8da8w linears of ``gm`` (``is_8da8w``), in graph order."""
    found = {}
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target != aten.linear.default:
            continue
        try:
            lin = llm_linear(gm, node)
        except NotLlm:
            continue
        if is_8da8w(lin):
            found[node] = lin
    return found


def uses_int8_tokens(lin: LlmLinear, isa: CpuInt8Isa) -> bool:
    """Whether ``lin`` (8da8w) runs ``aten._int_mm`` (VNNI / AMX: without, it is 20-35x slower
    than float32). The x86 lowering's oneDNN ``qlinear`` form takes 8da8w on any ISA, with
    ``tokens.token_u7``'s 7-bit tokens without VNNI (``rewrite.rewrite_llm_linears``)."""
    return isa.exact_u8s8 and is_8da8w(lin)
