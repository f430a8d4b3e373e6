"""The x86 LLM pass: each int8wo / int4wo / 8da8w / 8da4w linear onto torch's CPU weight kernels.

::

    before                                          after
    x (..., K) [-> per-token q/dq]                  x (..., K) [-> per-token q/dq]
    w_q -> dequantize_per_channel[_group] --+       -> reshape (M, K) [-> to(bf16)]
                                            v       -> aten._weight_int8pack_mm(., w_q, s)
                                 aten.linear(., ., b)   or _weight_int4pack_mm_for_cpu(., u4, g, sz)
                                                    -> [to(f32)] -> reshape (..., N) [-> + b]

Weights are packed once, here (``pack.py``), and stored as buffers of the returned module. The
per-token activation quantization of ``8da*`` is inlined as the aten ops of its own definition
(``tokens.py``: exact numerics, once per quantized activation shared by several linears), so the
weight kernel reads the dequantized activations: torch has no x86 int8 x int4 / int8 per-token
GEMM with int32 accumulation (``_dyn_quant_matmul_4bit`` stores fp32 on x86).

On a CPU with VNNI (or AMX) 8da8w runs an integer GEMM instead: the inlined quantization's int8
tokens go to ``aten._int_mm`` with the int8 weights (exact int32 sums), and the token zero
point, token scale and weight scales are applied to its result (``pack.py``). Measured here
(AVX-512 VNNI, 2 threads, K 1024, N 2816, weights in cache) it is 3x faster than
``_weight_int8pack_mm`` at one token and 8x at 128 (0.043 vs 0.136 ms, 0.87 vs 7.5 ms); in the
Llama-style decode step of ``bench/llm.py``, weights streamed from memory, 8.5 vs 11.9 ms.
Without VNNI ``_int_mm`` is 20-35x slower than float32 (issue 12's AVX2 measurement), so 8da8w
keeps the weight kernel there.

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

``compute_dtype`` is the dtype of the activations at the kernel: ``torch.float32`` matches the
reference within ``pt2q.tolerances.LLM_WEIGHT_KERNEL_FP32_STEPS``; ``torch.bfloat16`` is the
fast path of torch's kernels (their float32 path is a scalar loop) and matches within
``LLM_WEIGHT_KERNEL_BF16_STEPS``.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.lowering.llm.graph import buffer, claims, copy_meta, decision
from pt2q.lowering.llm.match import LlmLinear, NotLlm, llm_linear
from pt2q.lowering.x86.isa import CpuInt8Isa, detect_isa
from pt2q.lowering.x86.llm.pack import (
    PackedWeight,
    int16_weights,
    pack_int4_as_int16,
    pack_weight,
)
from pt2q.lowering.x86.llm.tokens import (
    inline_graph,
    inline_token_q,
    inline_token_q16,
    inline_token_qdq,
    token_q,
)
from pt2q.qdq.decision import LoweringReport, LoweringStatus, NodeDecision, attach_report
from pt2q.qdq.meta import X86_LLM_META_KEY

__all__ = [
    "COMPUTE_DTYPES",
    "LLM_META_KEY",
    "WEIGHT_BYTES_FACT",
    "apply_llm_pass",
    "lower_llm_linears",
    "merge_llm_report",
    "rewrite_llm_linears",
]

aten = torch.ops.aten
COMPUTE_DTYPES = (torch.float32, torch.bfloat16)
# LoweringReport.facts key: {linear node name: bytes of its packed weight + scales / zeros}
WEIGHT_BYTES_FACT = "llm_weight_bytes"
_ACT_REASON = (
    "inlined as the aten ops of its own definition (exact); the weight kernel reads the "
    "dequantized activations (torch has no x86 int8 x int4 GEMM, and aten._int_mm is slower "
    "than float without VNNI)"
)
_INT_ACT_REASON = (
    "inlined as the aten ops of its own definition (exact); aten._int_mm reads the int8 "
    "tokens, their zero point and scale are applied to its int32 sums"
)


def _lead_dims(graph: torch.fx.Graph, x: Node, shape: Sequence[Any]) -> list[Any]:
    """The sizes of all but the last dim of ``x`` (SymInt dims read with aten.sym_size)."""
    return [
        graph.call_function(aten.sym_size.int, (x, i)) if isinstance(s, torch.SymInt) else int(s)
        for i, s in enumerate(shape[:-1])
    ]


def _replace(lin: LlmLinear, y: Node, lead: list[Any], n: int) -> Node:
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


def _rewrite(
    gm: GraphModule, lin: LlmLinear, x: Node, packed: PackedWeight, dtype: torch.dtype
) -> Node:
    node, graph = lin.node, lin.node.graph
    out_shape = node.meta["val"].shape  # (..., N)
    k = lin.weight.q.shape[1]
    w, s = (
        buffer(gm, node, f"{node.name}_{part}", t)
        for part, t in zip(("weight", "scales"), packed.tensors, strict=True)
    )
    with graph.inserting_before(node):
        lead = _lead_dims(graph, x, out_shape)
        x2 = graph.call_function(aten.reshape.default, (x, [-1, k]))
        if dtype != torch.float32:
            x2 = graph.call_function(aten._to_copy.default, (x2,), {"dtype": dtype})
        if packed.kernel == "aten._weight_int8pack_mm":
            y = graph.call_function(aten._weight_int8pack_mm.default, (x2, w, s))
        else:
            y = graph.call_function(
                aten._weight_int4pack_mm_for_cpu.default, (x2, w, packed.group_size, s)
            )
            if packed.tensors[1].shape[1] != packed.n:  # N padded to a multiple of 16
                y = graph.call_function(aten.slice.Tensor, (y, 1, 0, packed.n))
        if dtype != torch.float32:
            y = graph.call_function(aten._to_copy.default, (y,), {"dtype": torch.float32})
    return _replace(lin, y, lead, packed.n)


def _rewrite_int_mm(
    gm: GraphModule, lin: LlmLinear, tokens: tuple[Node, Node, Node], packed: PackedWeight
) -> Node:
    """``linear(dq(xq), dq(w), b)`` as ``(_int_mm(xq, w.T) - z * sum_k w) * s_x * s_w + b``."""
    node, graph = lin.node, lin.node.graph
    out_shape = node.meta["val"].shape
    w, s_w, sums = (
        buffer(gm, node, f"{node.name}_{part}", t)
        for part, t in zip(("weight", "scales", "sums"), packed.tensors, strict=True)
    )
    xq, s_x, z = tokens  # xq: (M, K), quantized from x already reshaped (see _token_rows)
    assert lin.tokens is not None
    with graph.inserting_before(node):
        lead = _lead_dims(graph, lin.tokens.source, out_shape)
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
    return _replace(lin, y, lead, packed.n)


def _token_rows(lin: LlmLinear) -> Node:
    """``lin``'s float input as (M, K) rows, inserted before ``lin``: the integer tokens for
    ``aten._int_mm`` are computed on it, so Inductor allocates them (M, K) row-major. A view of
    a (1, 1, K) buffer came out of Inductor with strides (0, 1), and ``_int_mm`` on CPU reads a
    one-row operand's row stride as its leading dimension: wrong sums (torch 2.13)."""
    x = lin.x if lin.tokens is None else lin.tokens.source
    graph = lin.node.graph
    with graph.inserting_before(lin.node):
        return graph.call_function(aten.reshape.default, (x, [-1, lin.weight.q.shape[1]]))


def _rewrite_int16_tokens(
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
        lead = _lead_dims(graph, lin.x, out_shape)
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
    return _replace(lin, y, lead, n)


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


@functools.cache
def _traced_int16_weight(*specs: tuple[tuple[int, ...], torch.dtype]) -> torch.fx.Graph:
    from torch.fx.experimental.proxy_tensor import make_fx

    examples = [torch.zeros(shape, dtype=dtype) for shape, dtype in specs]
    return make_fx(_int16_weight_linear)(*examples).graph


def _rewrite_int16_weights(
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
        lead = _lead_dims(graph, lin.tokens.source, node.meta["val"].shape)
    y = inline_graph(_traced_int16_weight(*specs), graph, inputs, node)
    return _replace(lin, y, lead, packed.n)


def _static_rows(lin: LlmLinear) -> int | None:
    """Rows (tokens) per call of ``lin``, when every leading dim is static."""
    dims = lin.node.meta["val"].shape[:-1]
    return None if any(isinstance(d, torch.SymInt) for d in dims) else math.prod(dims)


def _int16_weights(lin: LlmLinear, isa: CpuInt8Isa) -> bool:
    """Whether ``lin`` (8da4w) runs ``_int16_weight_linear``: VNNI / AMX, int8 tokens, and at
    least ``INT16_WEIGHT_MIN_ROWS`` rows per call (static)."""
    t, rows = lin.tokens, _static_rows(lin)
    return (
        isa.exact_u8s8
        and t is not None
        and lin.weight.bits == 4
        and (t.dtype, t.qmin, t.qmax) == (torch.int8, -128, 127)
        and rows is not None
        and rows >= INT16_WEIGHT_MIN_ROWS
    )


def _int16_tokens(lin: LlmLinear, isa: CpuInt8Isa, compute_dtype: torch.dtype) -> bool:
    """Whether ``lin`` (int8 weight-only) runs ``aten._int_mm`` on 16-bit fixed-point tokens:
    VNNI / AMX, and bf16 compute (the rounding it replaces)."""
    return (
        isa.exact_u8s8
        and compute_dtype == torch.bfloat16
        and lin.tokens is None
        and lin.weight.bits == 8
        and lin.x.meta["val"].dtype == torch.float32
    )


def _int_tokens(lin: LlmLinear, isa: CpuInt8Isa) -> bool:
    """Whether ``lin`` (8da8w: int8 tokens in [-128, 127], int8 weights) runs ``aten._int_mm``."""
    t = lin.tokens
    return (
        isa.exact_u8s8
        and t is not None
        and lin.weight.bits == 8
        and (t.dtype, t.qmin, t.qmax) == (torch.int8, -128, 127)
    )


def rewrite_llm_linears(
    gm: GraphModule, compute_dtype: torch.dtype = torch.float32, isa: CpuInt8Isa | None = None
) -> tuple[list[NodeDecision], dict[str, int]]:
    """Rewrite, in place on ``gm`` (the lowering's private copy), every LLM linear pattern onto
    torch's x86 weight kernels. Returns the decisions for the nodes it looked at (linear:
    LOWERED or REFERENCE with the reason; weight dequantize and the per-token activation ops,
    inlined: FUSED) and the packed weight bytes per lowered linear. Linears of other patterns
    (static int8, float) get no decision: they belong to the oneDNN pass. ``isa`` (default: this
    CPU's) decides whether 8da8w, int8wo (with bf16 compute) and 8da4w (over many rows) run the
    integer GEMM."""
    if compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(
            f"rewrite_llm_linears: compute_dtype must be one of {COMPUTE_DTYPES}, got {compute_dtype}"
        )
    decisions: list[NodeDecision] = []
    weight_bytes: dict[str, int] = {}
    isa = isa or detect_isa()
    inlined: dict[Node, Node] = {}  # quantize_per_token -> its inlined dequantized output
    inlined_q: dict[Node, tuple[Node, Node, Node]] = {}  # -> its inlined (int8, scale, zp)
    inlined_16: dict[Node, tuple[Node, Node]] = {}  # float input -> its int16 halves, scale
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target != aten.linear.default:
            continue
        try:
            lin = llm_linear(gm, node)
            int_mm, int16 = _int_tokens(lin, isa), _int16_tokens(lin, isa, compute_dtype)
            wide = _int16_weights(lin, isa)
            if wide:
                try:
                    packed = pack_int4_as_int16(lin.weight)
                except NotLlm:
                    wide = False
            if not wide:
                packed = pack_weight(lin.weight, compute_dtype, int_mm or int16, not int16)
        except NotLlm as e:
            if claims(node):
                decisions.append(decision(node, LoweringStatus.REFERENCE, None, str(e)))
            continue
        name, w_node = node.name, lin.weight.node
        note = ", int16 tokens" if int16 else ", int16 weights" if wide else ""
        kernel = f"{packed.kernel} ({lin.scheme}{note})"
        decisions.append(decision(node, LoweringStatus.LOWERED, kernel))
        decisions.append(decision(w_node, LoweringStatus.FUSED, name))
        weight_bytes[name] = packed.nbytes
        if int16:
            if lin.x not in inlined_16:  # first linear reading this input: q / k / v share it
                inlined_16[lin.x] = inline_token_q16(gm.graph, _token_rows(lin), node)
            _rewrite_int16_tokens(gm, lin, packed, inlined_16[lin.x])
            continue
        if int_mm or wide:
            t = lin.tokens
            assert t is not None
            if t.q not in inlined_q:  # first linear reading these int8 tokens
                inlined_q[t.q] = inline_token_q(gm.graph, _token_rows(lin), node)
                for n in (t.choose, t.q):
                    decisions.append(decision(n, LoweringStatus.FUSED, name, _INT_ACT_REASON))
            decisions.append(decision(t.dq, LoweringStatus.FUSED, name, _INT_ACT_REASON))
            rewrite = _rewrite_int16_weights if wide else _rewrite_int_mm
            rewrite(gm, lin, inlined_q[t.q], packed)
            continue
        x = lin.x
        if lin.tokens is not None:
            t = lin.tokens
            if t.q not in inlined:  # first linear reading these tokens
                inlined[t.q] = inline_token_qdq(gm.graph, t.source, node)
                for n in (t.choose, t.q):
                    decisions.append(decision(n, LoweringStatus.FUSED, name, _ACT_REASON))
            x = inlined[t.q]
            decisions.append(decision(t.dq, LoweringStatus.FUSED, name, _ACT_REASON))
        _rewrite(gm, lin, x, packed, compute_dtype)
    gm.graph.eliminate_dead_code()
    gm.graph.lint()
    gm.recompile()
    return decisions, weight_bytes


def lower_llm_linears(
    model: GraphModule,
    example_inputs: tuple[Any, ...] | None = None,
    *,
    compute_dtype: torch.dtype = torch.float32,
    isa: CpuInt8Isa | None = None,
) -> GraphModule:
    """The LLM pass alone, as a lowering: returns a new eager ``GraphModule`` (``model`` is
    not modified) whose LLM linears run torch's x86 weight kernels, with a ``LoweringReport``
    attached (``pt2q.qdq.read_report``; ``facts[WEIGHT_BYTES_FACT]`` holds the packed weight
    bytes per linear). ``isa`` overrides the detected CPU facts (8da8w's integer GEMM needs
    VNNI). Run once on ``example_inputs`` when given, as a check."""
    if not isinstance(model, GraphModule):
        raise TypeError(
            "lower_llm_linears: model must be the GraphModule returned by convert_pt2e, got "
            f"{type(model).__name__}"
        )
    gm = GraphModule(model, copy.deepcopy(model.graph), class_name=type(model).__name__)
    decisions, weight_bytes = rewrite_llm_linears(gm, compute_dtype, isa)
    report = LoweringReport("x86-llm", decisions, {WEIGHT_BYTES_FACT: weight_bytes})
    report.facts["compute_dtype"] = str(compute_dtype)
    attach_report(gm, report)
    if example_inputs is not None:
        with torch.no_grad():
            gm(*example_inputs)
    return gm


# gm.meta key where apply_llm_pass leaves its decisions for merge_llm_report
LLM_META_KEY = X86_LLM_META_KEY


def apply_llm_pass(
    gm: GraphModule, compute_dtype: torch.dtype = torch.float32, isa: CpuInt8Isa | None = None
) -> None:
    """``rewrite_llm_linears`` as a step of ``lower_pt2e_quantized_to_x86``: rewrites ``gm`` (its
    private copy) and keeps the decisions and packed bytes in ``gm.meta[LLM_META_KEY]``."""
    gm.meta[LLM_META_KEY] = rewrite_llm_linears(gm, compute_dtype, isa)


def merge_llm_report(report: LoweringReport, gm: GraphModule) -> LoweringReport:
    """Put the LLM pass's decisions (kept by ``apply_llm_pass`` on ``gm``) into the x86 report:
    a decision for the same node replaces the oneDNN pass's, the others are appended; the packed
    bytes go to ``report.facts[WEIGHT_BYTES_FACT]``. Returns ``report``."""
    decisions, weight_bytes = gm.meta.get(LLM_META_KEY, ([], {}))
    mine = {d.node: d for d in decisions}
    report.decisions = [mine.pop(d.node, d) for d in report.decisions] + list(mine.values())
    if weight_bytes:
        report.facts[WEIGHT_BYTES_FACT] = dict(weight_bytes)
    return report
