"""The x86 LLM pass: each int8wo / int4wo / 8da8w / 8da4w linear onto torch's CPU weight kernels.

::

    before                                          after
    x (..., K) [-> per-token q/dq]                  x (..., K) [-> per-token q/dq]
    w_q -> dequantize_per_channel[_group] --+       -> reshape (M, K) [-> to(bf16)]
                                            v       -> aten._weight_int8pack_mm(., w_q, s)
                                 aten.linear(., ., b)   or _weight_int4pack_mm_for_cpu(., u4, g, sz)
                                                    -> [to(f32)] -> reshape (..., N) [-> + b]

Weights are packed once, here (``pack.py``), and stored as buffers of the returned module. The
per-token activation quantization of ``8da*`` stays as its reference ops (exact numerics; torch
has no x86 int8 x int4 group GEMM with int32 accumulation: ``_dyn_quant_matmul_4bit`` stores
fp32 on x86), so the weight kernel reads the dequantized activations.

``compute_dtype`` is the dtype of the activations at the kernel: ``torch.float32`` matches the
reference within ``pt2q.tolerances.LLM_WEIGHT_KERNEL_FP32_STEPS``; ``torch.bfloat16`` is the
fast path of torch's kernels (their float32 path is a scalar loop) and matches within
``LLM_WEIGHT_KERNEL_BF16_STEPS``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.lowering.llm.graph import TOKEN_REASON, buffer, claims, copy_meta, decision
from pt2q.lowering.llm.match import LlmLinear, NotLlm, llm_linear
from pt2q.lowering.x86.llm.pack import PackedWeight, pack_weight
from pt2q.qdq.decision import LoweringReport, LoweringStatus, NodeDecision, attach_report

__all__ = ["COMPUTE_DTYPES", "WEIGHT_BYTES_FACT", "rewrite_llm_linears", "lower_llm_linears"]

aten = torch.ops.aten
COMPUTE_DTYPES = (torch.float32, torch.bfloat16)
# LoweringReport.facts key: {linear node name: bytes of its packed weight + scales / zeros}
WEIGHT_BYTES_FACT = "llm_weight_bytes"
# torch has no x86 int8 x int4 / int8 per-token GEMM with int32 accumulation
_ACT_REASON = TOKEN_REASON + " (dequantized: torch has no x86 int8 x int4/int8 GEMM for it)"


def _lead_dims(graph: torch.fx.Graph, x: Node, shape: Sequence[Any]) -> list[Any]:
    """The sizes of all but the last dim of ``x`` (SymInt dims read with aten.sym_size)."""
    return [
        graph.call_function(aten.sym_size.int, (x, i)) if isinstance(s, torch.SymInt) else int(s)
        for i, s in enumerate(shape[:-1])
    ]


def _rewrite(gm: GraphModule, lin: LlmLinear, packed: PackedWeight, dtype: torch.dtype) -> Node:
    node, graph = lin.node, lin.node.graph
    out_shape = node.meta["val"].shape  # (..., N)
    k = lin.weight.q.shape[1]
    w, s = (
        buffer(gm, node, f"{node.name}_{part}", t)
        for part, t in zip(("weight", "scales"), packed.tensors, strict=True)
    )
    with graph.inserting_before(node):
        lead = _lead_dims(graph, lin.x, out_shape)
        x2 = graph.call_function(aten.reshape.default, (lin.x, [-1, k]))
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
        y = graph.call_function(aten.reshape.default, (y, [*lead, packed.n]))
        if lin.bias is not None:
            y = graph.call_function(aten.add.Tensor, (y, lin.bias))
    copy_meta(y, node)
    node.replace_all_uses_with(y)
    graph.erase_node(node)
    return y


def rewrite_llm_linears(
    gm: GraphModule, compute_dtype: torch.dtype = torch.float32
) -> tuple[list[NodeDecision], dict[str, int]]:
    """Rewrite, in place on ``gm`` (the lowering's private copy), every LLM linear pattern onto
    torch's x86 weight kernels. Returns the decisions for the nodes it looked at (linear:
    LOWERED or REFERENCE with the reason; weight dequantize: FUSED; per-token activation ops:
    REFERENCE) and the packed weight bytes per lowered linear. Linears of other patterns
    (static int8, float) get no decision: they belong to the oneDNN pass."""
    if compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(
            f"rewrite_llm_linears: compute_dtype must be one of {COMPUTE_DTYPES}, got {compute_dtype}"
        )
    decisions: list[NodeDecision] = []
    weight_bytes: dict[str, int] = {}
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target != aten.linear.default:
            continue
        try:
            lin = llm_linear(gm, node)
            packed = pack_weight(lin.weight, compute_dtype)
        except NotLlm as e:
            if claims(node):
                decisions.append(decision(node, LoweringStatus.REFERENCE, None, str(e)))
            continue
        name, w_node = node.name, lin.weight.node
        kernel = f"{packed.kernel} ({lin.scheme})"
        decisions.append(decision(node, LoweringStatus.LOWERED, kernel))
        decisions.append(decision(w_node, LoweringStatus.FUSED, name))
        if lin.tokens is not None:
            reason = _ACT_REASON.format(kernel=packed.kernel)
            for n in (lin.tokens.choose, lin.tokens.quantize, lin.tokens.dequantize):
                decisions.append(decision(n, LoweringStatus.REFERENCE, None, reason))
        weight_bytes[name] = packed.nbytes
        _rewrite(gm, lin, packed, compute_dtype)
    gm.graph.eliminate_dead_code()
    gm.graph.lint()
    gm.recompile()
    return decisions, weight_bytes


def lower_llm_linears(
    model: GraphModule,
    example_inputs: tuple[Any, ...] | None = None,
    *,
    compute_dtype: torch.dtype = torch.float32,
) -> GraphModule:
    """The LLM pass alone, as a lowering: returns a new eager ``GraphModule`` (``model`` is
    not modified) whose LLM linears run torch's x86 weight kernels, with a ``LoweringReport``
    attached (``pt2q.qdq.read_report``; ``facts[WEIGHT_BYTES_FACT]`` holds the packed weight
    bytes per linear). Run once on ``example_inputs`` when given, as a check."""
    if not isinstance(model, GraphModule):
        raise TypeError(
            "lower_llm_linears: model must be the GraphModule returned by convert_pt2e, got "
            f"{type(model).__name__}"
        )
    gm = GraphModule(model, copy.deepcopy(model.graph), class_name=type(model).__name__)
    decisions, weight_bytes = rewrite_llm_linears(gm, compute_dtype)
    report = LoweringReport("x86-llm", decisions, {WEIGHT_BYTES_FACT: weight_bytes})
    report.facts["compute_dtype"] = str(compute_dtype)
    attach_report(gm, report)
    if example_inputs is not None:
        with torch.no_grad():
            gm(*example_inputs)
    return gm
