"""The ARM LLM pass: int8wo / int4wo / 8da8w / 8da4w linears onto pt2q's NEON LLM GEMMs.

::

    before                                           after
    x -> [choose_qparams_per_token_asymmetric        x -> [choose_qparams_per_token_asymmetric
          -> quantize_per_token (xq, s, zp)                -> quantize_per_token (xq, s, zp)]
          -> dequantize_per_token] --+
    w_q -> dequantize_per_channel    +--> linear     pt2q_arm_llm.linear_qc8w(x, packed, b)   int8wo
           [_group] -----------------+   (., ., b)   pt2q_arm_llm.linear_qc4w(x, packed, b)   int4wo
                                                     pt2q_arm_llm.linear_qd8(xq, s, zp, packed, b)

| scheme | kernel family        | weights packed as                                   |
| ------ | -------------------- | --------------------------------------------------- |
| int8wo | f32-qc8w-gemm        | int8 per channel, symmetric                         |
| int4wo | f32-qc4w-gemm        | nibbles u = q - qmin, zero point zp - qmin per group |
| 8da8w  | qd8-f32-gemm         | int8 per channel + row sums                         |
| 8da4w  | qd8-f32-qc4w-gemm    | signed nibbles + per-group sums                     |

The per-token choose / quantize ops stay (exact, the program's own math); the kernel takes the
int8 activations with their qparams, so dequantize_per_token is fused.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.lowering.arm.llm.ops import load_llm_ops
from pt2q.lowering.llm.graph import TOKEN_REASON, buffer, claims, copy_meta, decision
from pt2q.lowering.llm.match import LlmLinear, LlmWeight, NotLlm, llm_linear
from pt2q.qdq.decision import LoweringReport, LoweringStatus, NodeDecision, attach_report

__all__ = [
    "LLM_FAMILY",
    "WEIGHT_BYTES_FACT",
    "check_llm",
    "pack_llm",
    "rewrite_llm_linears_arm",
    "lower_llm_to_arm",
]

aten = torch.ops.aten
WEIGHT_BYTES_FACT = "llm_weight_bytes"
LLM_FAMILY = {  # scheme -> the kernel family that runs it
    "int8wo": "f32-qc8w-gemm",
    "int4wo": "f32-qc4w-gemm",
    "8da8w": "qd8-f32-gemm",
    "8da4w": "qd8-f32-qc4w-gemm",
}


def check_llm(lin: LlmLinear) -> None:
    """NotLlm with the reason when no NEON LLM kernel takes ``lin``."""
    w = lin.weight
    if w.bits == 8 and not w.per_channel:
        raise NotLlm(f"weight {w.node.name}: int8 per-group weights have no NEON kernel")
    if w.bits == 4 and w.group_size % 16:
        raise NotLlm(
            f"weight {w.node.name}: int4 group size {w.group_size}; the NEON kernels take "
            "multiples of 16"
        )
    if lin.scheme in ("int8wo", "8da8w", "8da4w") and bool((w.zero_point != 0).any()):
        raise NotLlm(f"weight {w.node.name}: {lin.scheme} kernels need symmetric weights")
    if lin.scheme == "8da4w" and (w.qmin, w.qmax) != (-8, 7):
        raise NotLlm(f"weight {w.node.name}: 8da4w weights must be in [-8, 7]")
    if lin.scheme == "int4wo" and bool((w.zero_point != w.zero_point.round()).any()):
        raise NotLlm(f"weight {w.node.name}: int4wo kernels take integer zero points")


def pack_llm(w: LlmWeight, scheme: str, variant: str) -> torch.Tensor:
    """``w`` packed once for ``variant`` (a kernel of ``LLM_FAMILY[scheme]``)."""
    ops = torch.ops.pt2q_arm_llm
    scale = w.scale.float()
    if w.bits == 8:
        return ops.pack_qc8w(w.q, scale.reshape(-1), variant)
    if scheme == "int4wo":
        u = (w.q.to(torch.int32) - w.qmin).to(torch.int8)
        return ops.pack_qc4w(
            u, scale, (w.zero_point - w.qmin).to(torch.int32), w.group_size, variant
        )
    n, k = w.q.shape
    wsum = w.q.to(torch.int32).reshape(n, k // w.group_size, w.group_size).sum(-1)
    return ops.pack_qc4w(w.q, scale, wsum.to(torch.int32), w.group_size, variant)


def _rewrite(gm: GraphModule, lin: LlmLinear, variant: str, packed: torch.Tensor) -> Node:
    node, graph = lin.node, lin.node.graph
    ops = torch.ops.pt2q_arm_llm
    n = int(lin.weight.q.shape[0])
    group = lin.weight.group_size if lin.weight.bits == 4 else 0
    p = buffer(gm, node, f"{node.name}_packed", packed)
    with graph.inserting_before(node):
        if lin.tokens is not None:
            t = lin.tokens
            args: tuple[Any, ...] = (t.q, t.scale, t.zero_point, p, lin.bias, n, group, variant)
            new = graph.call_function(ops.linear_qd8.default, args)
        elif lin.weight.bits == 8:
            new = graph.call_function(ops.linear_qc8w.default, (lin.x, p, lin.bias, n, variant))
        else:
            args = (lin.x, p, lin.bias, n, group, variant)
            new = graph.call_function(ops.linear_qc4w.default, args)
    copy_meta(new, node)
    node.replace_all_uses_with(new)
    graph.erase_node(node)
    return new


def rewrite_llm_linears_arm(
    gm: GraphModule, isa: str | None = None
) -> tuple[list[NodeDecision], dict[str, int]]:
    """Rewrite, in place on ``gm`` (the lowering's private copy), every LLM linear onto the NEON
    LLM GEMMs, variants chosen for ``isa`` (default: this CPU). Returns the decisions (linear
    LOWERED or REFERENCE with the reason; weight dequantize and 8da* dequantize_per_token FUSED;
    choose / quantize per token REFERENCE) and the packed bytes per lowered linear."""
    from pt2q.lowering.arm.ops import select_variant

    load_llm_ops()
    decisions: list[NodeDecision] = []
    weight_bytes: dict[str, int] = {}
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target != aten.linear.default:
            continue
        try:
            lin = llm_linear(gm, node)
            check_llm(lin)
        except NotLlm as e:
            if claims(node):
                decisions.append(decision(node, LoweringStatus.REFERENCE, None, str(e)))
            continue
        k = select_variant(LLM_FAMILY[lin.scheme], isa, n=int(lin.weight.q.shape[0]))
        variant = f"{k.family}/{k.variant}"
        packed = pack_llm(lin.weight, lin.scheme, variant)
        name = node.name
        decisions.append(decision(node, LoweringStatus.LOWERED, variant))
        decisions.append(decision(lin.weight.node, LoweringStatus.FUSED, name))
        if lin.tokens is not None:
            for t in (lin.tokens.choose, lin.tokens.q):
                reason = TOKEN_REASON.format(kernel=variant)
                decisions.append(decision(t, LoweringStatus.REFERENCE, None, reason))
            decisions.append(decision(lin.tokens.dq, LoweringStatus.FUSED, name))
        weight_bytes[name] = packed.numel() * packed.element_size()
        _rewrite(gm, lin, variant, packed)
    gm.graph.eliminate_dead_code()
    gm.graph.lint()
    gm.recompile()
    return decisions, weight_bytes


def lower_llm_to_arm(
    model: GraphModule, example_inputs: Sequence[Any] | None = None, *, isa: str | None = None
) -> GraphModule:
    """The ARM LLM pass alone, as a lowering: a new ``GraphModule`` (``model`` is not
    modified) with a ``LoweringReport`` attached (``pt2q.qdq.read_report``;
    ``facts[WEIGHT_BYTES_FACT]``: packed bytes per linear). Run once on ``example_inputs``
    when given. Raises ``TypeError`` when ``model`` is not a GraphModule."""
    if not isinstance(model, GraphModule):
        raise TypeError(
            f"lower_llm_to_arm: model must be the GraphModule from convert_pt2e, got "
            f"{type(model).__name__}"
        )
    gm = copy.deepcopy(model)
    decisions, weight_bytes = rewrite_llm_linears_arm(gm, isa)
    attach_report(gm, LoweringReport("arm-llm", decisions, {WEIGHT_BYTES_FACT: weight_bytes}))
    if example_inputs is not None:
        with torch.no_grad():
            gm(*example_inputs)
    return gm
