"""``lower_pt2e_quantized_to_arm``: the reference program onto pt2q's NEON kernels.

The pass is the pattern table (``patterns.PATTERNS``) applied in order on a copy of the program,
then one ``NodeDecision`` per call of the reference program:

| node                                    | status      | kernel / reason                         |
| --------------------------------------- | ----------- | --------------------------------------- |
| anchor of a rewritten match (linear...) | LOWERED     | the variant, ``qs8-gemm/4x16-neon-dot`` |
| its post-ops and q/dq                   | FUSED       | the anchor's name                       |
| int8 q / dq rewritten alone             | LOWERED     | ``f32-qs8-vcvt/auto``, ...              |
| q / dq no entry took                    | REFERENCE   | why                                     |
| any other call                          | FLOAT       | why (the entry's ``NoMatch`` reason, the float part, or no entry) |
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.export import ExportedProgram
from torch.fx import GraphModule, Node

from pt2q.lowering.arm.ops import cpu_isa, load_ops
from pt2q.lowering.arm.patterns import PATTERNS
from pt2q.lowering.arm.rewrite import ArmOptions, ArmPattern
from pt2q.qdq.decision import LoweringReport, LoweringStatus, NodeDecision, attach_report
from pt2q.qdq.engine import Match, rewrite
from pt2q.qdq.meta import copy_handle, get_handle, set_quantized_output
from pt2q.qdq.ops import is_qdq, is_quantize
from pt2q.qdq.program_checks import require_converted_program, warn_if_nothing_lowered
from pt2q.qdq.views import quantized_op

__all__ = ["lower_pt2e_quantized_to_arm"]

_WEIGHTED = (torch.ops.aten.linear.default, torch.ops.aten.conv2d.default)


@dataclass(frozen=True)
class _Seen:
    """A call of the reference program, recorded before the rewrites remove it."""

    name: str
    op: str
    handle: int | None
    is_qdq: bool
    float_parts: tuple[str, ...]  # what was not quantized around it, before any rewrite


def _see(node: Node) -> _Seen:
    weight_arg = 1 if node.target in _WEIGHTED else None
    parts = () if is_qdq(node) else quantized_op(node, weight_arg=weight_arg).float_parts()
    return _Seen(node.name, str(node.target), get_handle(node), is_qdq(node), tuple(parts))


def _as_graph_module(model: GraphModule | ExportedProgram) -> GraphModule:
    """A private copy of the program to rewrite (the caller's object is never touched)."""
    if isinstance(model, ExportedProgram):
        module = model.module()
        assert isinstance(module, GraphModule), type(module)
        return copy.deepcopy(module)
    if isinstance(model, GraphModule):
        return copy.deepcopy(model)
    raise TypeError(
        "lower_pt2e_quantized_to_arm: model must be the GraphModule from convert_pt2e (or an "
        f"ExportedProgram of it), got {type(model).__name__}; run prepare_pt2e / convert_pt2e "
        "on torch.export.export(model, args).module() first"
    )


def _record_match(decisions: dict[str, NodeDecision], match: Match, kernel: str | None) -> None:
    anchor = match.anchor
    kernel = kernel or match.pattern
    for node in match.nodes:
        if node.target is operator.getitem:
            continue
        status = LoweringStatus.LOWERED if node is anchor else LoweringStatus.FUSED
        what = kernel if node is anchor else anchor.name
        decisions[node.name] = NodeDecision(
            node.name, str(node.target), get_handle(node), status, what
        )


def _kept(seen: _Seen, rejected: dict[str, str]) -> NodeDecision:
    """The decision for a call no entry rewrote."""
    reason = rejected.get(seen.name)
    if seen.is_qdq:
        why = reason or f"no ARM kernel for {seen.op} (int8 per-tensor q/dq with literal qparams)"
        return NodeDecision(seen.name, seen.op, seen.handle, LoweringStatus.REFERENCE, reason=why)
    if reason is None:
        parts = seen.float_parts
        reason = "; ".join(parts) if parts else f"no ARM pattern takes {seen.op}; it runs in float"
    return NodeDecision(seen.name, seen.op, seen.handle, LoweringStatus.FLOAT, reason=reason)


def _finish_node(match: Match, new: Node) -> None:
    """Meta of a rewritten match's node: shape, the debug handle of the last float op it
    computes, and the qparams of an int8 output."""
    compute = match.compute_nodes
    if "val" in match.anchor.meta:
        new.meta["val"] = match.anchor.meta["val"]
    if compute:
        copy_handle(compute[-1], new)
        root = match.root
        scale, zero_point = root.args[1:3] if is_quantize(root) else (None, None)
        if isinstance(scale, float) and isinstance(zero_point, int):  # q(value, s, zp, ...)
            set_quantized_output(new, scale, zero_point)


_NOTHING_HINT = (
    "Quantize for ARM with XNNPACKQuantizer (int8 activations); uint8 programs from "
    "X86InductorQuantizer lower with lower_pt2e_quantized_to_x86."
)


def lower_pt2e_quantized_to_arm(
    model: GraphModule | ExportedProgram,
    example_inputs: Sequence[torch.Tensor],
    *,
    dynamic_per_row: bool = True,
    patterns: Sequence[ArmPattern] = PATTERNS,
) -> GraphModule:
    """Lower a converted (``convert_pt2e``) XNNPACK-style program onto pt2q's NEON kernels.

    Returns a new ``GraphModule`` (``model`` is not modified) whose matched patterns run
    ``torch.ops.pt2q_arm`` ops with weights packed now; it is run once on ``example_inputs`` as
    a check. ``pt2q.lowering.lowering_report(result)`` says per node what was lowered (to which
    kernel variant, chosen for this CPU; ``PT2Q_ARM_ISA`` can force a weaker one) and why the
    rest was not. ``dynamic_per_row`` (see ``ArmOptions``) quantizes dynamic-linear activations
    per row instead of per tensor. ``patterns`` replaces the table (default: ``PATTERNS``).
    Raises ``TypeError`` when ``model`` is neither a GraphModule nor an ExportedProgram.
    """
    require_converted_program(model, "lower_pt2e_quantized_to_arm")
    gm = _as_graph_module(model)
    load_ops()
    options = ArmOptions(dynamic_per_row=dynamic_per_row)
    seen = [
        _see(n)
        for n in gm.graph.nodes
        if n.op == "call_function" and n.target is not operator.getitem
    ]
    decisions: dict[str, NodeDecision] = {}
    rejected: dict[str, str] = {}
    for entry in patterns:
        result = rewrite(gm, entry.bind(options))
        for match, new, kernel in result.rewritten:
            _record_match(decisions, match, kernel)
            _finish_node(match, new)
        for match, reason in result.rejected:
            rejected.setdefault(match.anchor.name, reason)
    gm.graph.eliminate_dead_code()
    gm.graph.lint()
    gm.recompile()
    report = LoweringReport("ARM", facts={"isa": cpu_isa(), "dynamic_per_row": dynamic_per_row})
    report.decisions = [decisions.get(s.name) or _kept(s, rejected) for s in seen]
    attach_report(gm, report)
    warn_if_nothing_lowered(
        "lower_pt2e_quantized_to_arm", gm, len(decisions), "int8", _NOTHING_HINT
    )
    with torch.no_grad():
        gm(*example_inputs)
    return gm
