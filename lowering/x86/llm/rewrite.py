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

On a CPU with VNNI / AMX, 8da8w, int8wo (with bf16 compute) and 8da4w over many tokens run
``aten._int_mm`` instead (``integer.py``).

``compute_dtype`` is the dtype of the activations at the weight kernels. The default,
``torch.bfloat16``, is the fast path of torch's kernels and matches the reference within
``pt2q.tolerances.LLM_WEIGHT_KERNEL_BF16_STEPS`` (the integer paths above within their own
rules); ``torch.float32`` matches within ``LLM_WEIGHT_KERNEL_FP32_STEPS`` but runs torch's
int8 / int4 weight kernels on their scalar float32 loop, 13x slower than an fp32 GEMV here
(measured), so a default of float32 made the quantized program slower than the float one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.lowering.llm.graph import buffer, claims, decision
from pt2q.lowering.llm.match import LlmLinear, NotLlm, llm_linear
from pt2q.lowering.x86.activation_forms import FORM_7BIT, FORM_SATURATING, fold_float_weight
from pt2q.lowering.x86.isa import CpuInt8Isa, detect_isa
from pt2q.lowering.x86.llm.integer import (
    is_8da8w,
    rewrite_int16_tokens,
    rewrite_int16_weights,
    rewrite_int_mm,
    rewrite_qlinear_tokens,
    token_rows,
    uses_int8_tokens,
    uses_int16_tokens,
    uses_int16_weights,
)
from pt2q.lowering.x86.llm.pack import (
    PackedWeight,
    pack_int4_as_int16,
    pack_weight,
)
from pt2q.lowering.x86.llm.splice import lead_dims, replace_linear
from pt2q.lowering.x86.llm.tokens import (
    inline_token_q,
    inline_token_q16,
    inline_token_qdq,
    inline_token_u7,
    inline_token_u8,
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
        lead = lead_dims(graph, x, out_shape)
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
    return replace_linear(lin, y, lead, packed.n)


def _float_linear(gm: GraphModule, lin: LlmLinear) -> None:
    """``lin`` reads its float input (its per-token q/dq then dead) and its weight as a float
    constant with the reference's dequantized values (``activation_forms.fold_float_weight``,
    as the static payoff's float nodes)."""
    if lin.tokens is not None:
        lin.node.replace_input_with(lin.x, lin.tokens.source)
    fold_float_weight(gm, lin.node)


def rewrite_llm_linears(
    gm: GraphModule,
    compute_dtype: torch.dtype = torch.bfloat16,
    isa: CpuInt8Isa | None = None,
    onednn: bool = False,
    keep_float: Mapping[str, str] | None = None,
    token_forms: Mapping[str, tuple[str, str]] | None = None,
) -> tuple[list[NodeDecision], dict[str, int]]:
    """Rewrite, in place on ``gm`` (the lowering's private copy), every LLM linear pattern onto
    torch's x86 weight kernels. Returns the decisions for the nodes it looked at (linear:
    LOWERED or REFERENCE with the reason; weight dequantize and the per-token activation ops,
    inlined: FUSED) and the packed weight bytes per lowered linear. Linears of other patterns
    (static int8, float) get no decision: they belong to the oneDNN pass. ``isa`` (default: this
    CPU's) decides whether 8da8w, int8wo (with bf16 compute) and 8da4w (over many rows) run the
    integer GEMM. ``onednn`` (the x86 lowering, whose Inductor passes follow): 8da8w's integer
    GEMM is left as the pattern Inductor turns into a prepacked oneDNN ``qlinear``
    (``integer.rewrite_qlinear_tokens``) instead of ``aten._int_mm``, which an eager program
    needs, on any ISA: without VNNI on ``tokens.token_u7``'s 7-bit tokens or, where measured
    closer, the saturating kernel on full-range ones. ``keep_float``: {linear name: reason} of
    8da8w linears whose int8 form measured slower than float (``lower.py``'s payoff): each
    reads its float input and its dequantized weight as a float constant, FLOAT with the
    reason. ``token_forms``: {linear name: (form, reason)} of 8da8w linears without VNNI
    (``token_forms.choose_token_forms``): "saturating" keeps the full-range tokens, any other
    form (and a linear not listed) takes the 7-bit ones; the reason goes to the LOWERED
    decision."""
    if compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(
            f"rewrite_llm_linears: compute_dtype must be one of {COMPUTE_DTYPES}, got {compute_dtype}"
        )
    decisions: list[NodeDecision] = []
    weight_bytes: dict[str, int] = {}
    isa = isa or detect_isa()
    inlined: dict[Node, Node] = {}  # quantize_per_token -> its inlined dequantized output
    inlined_q: dict[tuple[Node, bool, bool], tuple[Node, Node, Node]] = {}  # -> (tokens, scale, zp)
    inlined_16: dict[Node, tuple[Node, Node]] = {}  # float input -> its int16 halves, scale
    stacked: dict[tuple[Node, bool, bool], list[tuple[LlmLinear, PackedWeight]]] = {}
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target != aten.linear.default:
            continue
        if keep_float and node.name in keep_float:
            decisions.append(decision(node, LoweringStatus.FLOAT, None, keep_float[node.name]))
            _float_linear(gm, llm_linear(gm, node))
            continue
        try:
            lin = llm_linear(gm, node)
            int_mm, int16 = uses_int8_tokens(lin, isa), uses_int16_tokens(lin, isa, compute_dtype)
            wide = uses_int16_weights(lin, isa)
            qlinear = onednn and is_8da8w(lin) and not wide
            int_mm = int_mm or qlinear
            packed = (
                pack_int4_as_int16(lin.weight)
                if wide
                else pack_weight(lin.weight, compute_dtype, int_mm or int16, not int16)
            )
        except NotLlm as e:
            if claims(node):
                decisions.append(decision(node, LoweringStatus.REFERENCE, None, str(e)))
            continue
        name, w_node = node.name, lin.weight.node
        form, why = (token_forms or {}).get(name, (FORM_7BIT, ""))
        adapted = qlinear and not isa.exact_u8s8  # tokens in a no-VNNI form
        seven = adapted and form != FORM_SATURATING
        note = ", int16 tokens" if int16 else ", int16 weights" if wide else ""
        if adapted:
            note = ", 7-bit tokens" if seven else ", saturating tokens"
        op = "onednn.qlinear_pointwise" if qlinear else packed.kernel
        kernel = f"{op} ({lin.scheme}{note})"
        decisions.append(decision(node, LoweringStatus.LOWERED, kernel, why if qlinear else ""))
        decisions.append(decision(w_node, LoweringStatus.FUSED, name))
        weight_bytes[name] = packed.nbytes
        if int16:
            if lin.x not in inlined_16:  # first linear reading this input: q / k / v share it
                inlined_16[lin.x] = inline_token_q16(gm.graph, token_rows(lin), node)
            rewrite_int16_tokens(gm, lin, packed, inlined_16[lin.x])
            continue
        if int_mm or wide:
            t = lin.tokens
            assert t is not None
            key = (t.q, qlinear, seven)
            if key not in inlined_q:  # first linear reading these int8 tokens in this form
                inline = (
                    inline_token_u7 if seven else inline_token_u8 if qlinear else inline_token_q
                )
                inlined_q[key] = inline(gm.graph, token_rows(lin), node)
                for n in (t.choose, t.q):
                    decisions.append(decision(n, LoweringStatus.FUSED, name, _INT_ACT_REASON))
            decisions.append(decision(t.dq, LoweringStatus.FUSED, name, _INT_ACT_REASON))
            if qlinear:  # after the loop: one qlinear per shared token tensor and form
                stacked.setdefault(key, []).append((lin, packed))
                continue
            rewrite = rewrite_int16_weights if wide else rewrite_int_mm
            rewrite(gm, lin, inlined_q[key], packed)
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
    for key, group in stacked.items():
        lins, packs = zip(*group, strict=True)
        rewrite_qlinear_tokens(gm, lins, inlined_q[key], packs)
    gm.graph.eliminate_dead_code()
    gm.graph.lint()
    gm.recompile()
    return decisions, weight_bytes


def lower_llm_linears(
    model: GraphModule,
    example_inputs: tuple[Any, ...] | None = None,
    *,
    compute_dtype: torch.dtype = torch.bfloat16,
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
    gm: GraphModule,
    compute_dtype: torch.dtype = torch.bfloat16,
    isa: CpuInt8Isa | None = None,
    keep_float: Mapping[str, str] | None = None,
    token_forms: Mapping[str, tuple[str, str]] | None = None,
) -> None:
    """``rewrite_llm_linears`` as a step of ``lower_pt2e_quantized_to_x86``: rewrites ``gm`` (its
    private copy) and keeps the decisions and packed bytes in ``gm.meta[LLM_META_KEY]``."""
    gm.meta[LLM_META_KEY] = rewrite_llm_linears(
        gm, compute_dtype, isa, True, keep_float, token_forms
    )


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
