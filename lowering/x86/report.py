"""The x86 lowering's per-node decisions, as ``pt2q.qdq.NodeDecision`` records.

* :func:`static_reasons` reads the reference program: a conv / linear whose inputs lack the
  q/dq shape Inductor's int8 patterns need stays float, with the missing part named.
* :func:`build_report` joins those with the eager lowered program: every conv / linear that
  became a oneDNN kernel is found by its weight-scale constant (the same ``get_attr`` in both
  graphs: no name matching), its post-ops and output quantize are ``FUSED`` as the kernel's own
  arguments say (unary / binary post-op, int8 output dtype), and the kernel node gets the
  anchor's debug handle.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.fx import GraphModule, Node
from torch.fx.operator_schemas import normalize_function

from pt2q.lowering.x86.activation_forms import FORM_FLOAT, ActivationChoice
from pt2q.lowering.x86.isa import CpuInt8Isa
from pt2q.lowering.x86.patterns import (
    BINARY_POST_OPS,
    COMPUTE_OPS,
    ONEDNN_KERNELS,
    UNARY_POST_OPS,
)
from pt2q.qdq import LoweringReport, LoweringStatus, NodeDecision
from pt2q.qdq.dangling import RemovedPair
from pt2q.qdq.meta import copy_handle, get_handle, kept_float_reasons
from pt2q.qdq.views import quantized_op

__all__ = ["static_reasons", "build_report", "ATTENTION_REASON"]

# Measured by bench/x86_attention.py on this project's machine: see lowering/x86/README.md.
ATTENTION_REASON = (
    "attention stays float: Inductor (torch 2.13, CPU) has no int8 activation x activation "
    "matmul pattern, and the int8 candidates measured slower than fp32 bmm for attention "
    "shapes (bench/x86_attention.py: torch._int_mm 3-12x, oneDNN u8s8 with per-call prepack "
    "18-1100x)"
)
_ATTENTION_OPS = frozenset(
    {"aten.bmm.default", "aten.matmul.default", "aten.scaled_dot_product_attention.default"}
)


def static_reasons(gm: GraphModule) -> dict[str, str]:
    """Conv / linear node name -> why it cannot become a oneDNN int8 kernel ("" when it can)."""
    out: dict[str, str] = {}
    kept, float_ops = kept_float_reasons(gm), kept_float_reasons(gm, ops=True)
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target not in COMPUTE_OPS:
            continue
        view = quantized_op(node, weight_arg=1)
        act, w = view.inputs[0] if view.inputs else None, view.weight
        if act is None:
            src = node.args[0] if node.args else None
            why = float_ops.get(node.name) or (
                kept.get(src.name) if isinstance(src, Node) else None
            )
            reason = (
                f"activation input of {node.name} is not dequantized "
                f"({why or 'the quantizer left it float'})"
            )
        elif act.dtype != torch.uint8:
            reason = (
                f"activation of {node.name} is {act.dtype}; oneDNN's x86 int8 kernels take uint8 "
                "activations (quantize with X86InductorQuantizer)"
            )
        elif not act.is_static:
            reason = f"activation of {node.name} has run-time qparams (dynamic quantization)"
        elif w is None or w.axis not in (0, None) or w.qweight.op != "get_attr":
            reason = f"weight of {node.name} is not a dequantized int8 constant on axis 0"
        else:
            reason = ""
        out[node.name] = reason
    return out


def _weight_key(gm: GraphModule, node: Node, index: int) -> str | None:
    """The ``get_attr`` target of the per-channel weight scale argument ``index`` of ``node``:
    the same constant in the reference and in the lowered graph (freezing keeps it)."""
    arg = node.args[index] if len(node.args) > index else None
    return str(arg.target) if isinstance(arg, Node) and arg.op == "get_attr" else None


def _kernels(lowered: GraphModule) -> dict[str, tuple[Node, dict[str, Any]]]:
    """Weight-scale constant -> (oneDNN kernel node, its arguments by schema name)."""
    out: dict[str, tuple[Node, dict[str, Any]]] = {}
    for n in lowered.graph.nodes:
        if not any(n.target in ops for ops in ONEDNN_KERNELS.values()):
            continue
        normalized = normalize_function(
            n.target, n.args, n.kwargs, normalize_to_only_use_kwargs=True
        )
        assert normalized is not None
        kwargs = dict(normalized.kwargs)
        w_scale = kwargs.get("w_scale")
        if isinstance(w_scale, Node) and w_scale.op == "get_attr":
            out[str(w_scale.target)] = (n, kwargs)
    return out


def _fused(kwargs: dict[str, Any]) -> tuple[bool, bool, bool]:
    """(unary post-op fused, binary post-op fused, output quantize fused) of a kernel call."""
    unary = next((kwargs[k] for k in _UNARY_ARGS if k in kwargs), "none")
    binary = next((kwargs[k] for k in _BINARY_ARGS if k in kwargs), "none")
    out_dtype = kwargs.get("output_dtype")
    return (
        unary not in (None, "none", ""),
        binary not in (None, "none", ""),
        out_dtype in (torch.uint8, torch.int8),
    )


_UNARY_ARGS = ("post_op_name", "attr", "unary_post_op", "unary_attr")
_BINARY_ARGS = ("binary_post_op", "binary_attr")


def build_report(
    reference: GraphModule,
    lowered: GraphModule,
    isa: CpuInt8Isa,
    reasons: dict[str, str],
    choices: list[ActivationChoice],
    removed: list[RemovedPair],
    counters: dict[str, int],
) -> LoweringReport:
    """One decision per conv / linear, fused post-op, attention op and removed q/dq pair."""
    form = {op: c for c in choices for op in c.consumers}
    kernels = _kernels(lowered)
    decisions: list[NodeDecision] = []
    removed_by_name = {p.quantize: p for p in removed}
    for node in reference.graph.nodes:
        op = str(node.target)
        if node.name in removed_by_name:
            pair = removed_by_name[node.name]
            why = f"dangling q/dq removed: its consumers {', '.join(pair.consumers)} run in float"
            decisions.append(NodeDecision(node.name, op, None, LoweringStatus.FLOAT, None, why))
        if node.op != "call_function":
            continue
        if op in _ATTENTION_OPS:
            decisions.append(
                NodeDecision(
                    node.name, op, get_handle(node), LoweringStatus.FLOAT, None, ATTENTION_REASON
                )
            )
            continue
        if node.target not in COMPUTE_OPS:
            continue
        view = quantized_op(node, weight_arg=1, post_op_targets=UNARY_POST_OPS | BINARY_POST_OPS)
        key = _weight_key(reference, view.weight.dq, 1) if view.weight is not None else None
        kernel_node, kwargs = kernels.get(key or "", (None, {}))
        choice = form.get(node.name)
        reason = reasons.get(node.name, "")
        if not reason and choice is not None and choice.form == FORM_FLOAT:
            reason = choice.reason
        if not reason and kernel_node is None:
            reason = "Inductor's int8 patterns did not match it (left as a float op)"
        if reason:
            decisions.append(
                NodeDecision(node.name, op, get_handle(node), LoweringStatus.FLOAT, None, reason)
            )
            continue
        assert kernel_node is not None
        copy_handle(node, kernel_node)
        note = f"activations {choice.form}: {choice.reason}" if choice else ""
        decisions.append(
            NodeDecision(
                node.name,
                op,
                get_handle(node),
                LoweringStatus.LOWERED,
                str(kernel_node.target),
                note,
            )
        )
        unary, binary, quantized = _fused(kwargs)
        fused = [p for p in view.post_ops if (binary if p.target in BINARY_POST_OPS else unary)]
        if quantized and view.output is not None:
            fused.append(view.output.q)
        for p in fused:
            decisions.append(
                NodeDecision(p.name, str(p.target), get_handle(p), LoweringStatus.FUSED, node.name)
            )
    facts: dict[str, object] = {"isa": isa.describe(), "inductor_counters": counters}
    facts["activation_forms"] = {c.quantizes[0]: c.form for c in choices if c.quantizes}
    return LoweringReport("x86 oneDNN", decisions, facts)
