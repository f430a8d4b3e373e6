"""ARM backend: pt2q's NEON int8 kernels (C, ``kernels/``) and the lowering of converted
XNNPACK-style programs onto them (``torch.ops.pt2q_arm``).

``lower_pt2e_quantized_to_arm(model, example_inputs)`` rewrites each ``dq -> op (-> relu) -> q``
pattern of ``patterns.PATTERNS`` into one ``pt2q_arm`` op with weights packed now (input zero
point folded into an int32 bias), then the remaining int8 ``quantize``/``dequantize`` into the
NEON conversion kernels. Anything unmatched stays in reference form and still runs;
``lowering_report(gm)`` says what was lowered (and to which variant) and why not.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.lowering.arm.match import QDQ, NoMatch
from pt2q.lowering.arm.ops import load_ops
from pt2q.lowering.arm.report import REPORT_KEY, Decision, LoweringReport

__all__ = ["lower_pt2e_quantized_to_arm", "lowering_report", "LoweringReport", "Decision"]


def _lower_patterns(gm: GraphModule, report: LoweringReport) -> None:
    from pt2q.lowering.arm.patterns import PATTERNS

    table = {p.anchor: p for p in PATTERNS}
    for node in list(gm.graph.nodes):
        pattern = table.get(node.target)
        if node.op != "call_function" or pattern is None:
            continue
        try:
            _new, _q, variant = pattern.rewrite(gm, node)
        except NoMatch as e:
            report.decisions.append(Decision(node.name, str(node.target), False, str(e)))
            continue
        report.decisions.append(Decision(node.name, str(node.target), True, variant))
    gm.graph.eliminate_dead_code()


def _lower_qdq(gm: GraphModule, report: LoweringReport) -> None:
    """quantize(float) / dequantize(int8) with literal qparams -> the NEON vcvt kernels."""
    arm = torch.ops.pt2q_arm
    for node in list(gm.graph.nodes):
        if node.target not in (QDQ["q"], QDQ["dq"]):
            continue
        x, scale, zp, qmin, qmax, dtype = node.args[:6]
        if dtype != torch.int8 or isinstance(scale, Node) or isinstance(zp, Node):
            reason = f"dtype {dtype} / tensor qparams: kept"
            report.decisions.append(Decision(node.name, str(node.target), False, reason))
            continue
        if node.target == QDQ["q"]:
            args: tuple[Any, ...] = (x, 1.0 / float(scale), int(zp), int(qmin), int(qmax), "auto")
            target, variant = arm.quantize.default, "f32-qs8-vcvt/auto"
        else:
            args, target, variant = (
                (x, int(zp), float(scale), "auto"),
                arm.dequantize.default,
                "qs8-f32-vcvt/auto",
            )
        with gm.graph.inserting_after(node):
            new = gm.graph.call_function(target, args)
        new.meta = dict(node.meta)
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        report.decisions.append(Decision(new.name, str(node.target), True, variant))


def lower_pt2e_quantized_to_arm(
    model: GraphModule, example_inputs: Sequence[torch.Tensor]
) -> GraphModule:
    """Lower a converted (``convert_pt2e``) XNNPACK-style program onto pt2q's NEON kernels.

    Returns a new ``GraphModule`` (``model`` is not modified) whose matched patterns run
    ``torch.ops.pt2q_arm`` ops; it is run once on ``example_inputs`` as a check. The kernel
    variants are chosen for this CPU (``PT2Q_ARM_ISA`` can force a weaker one). Raises
    ``TypeError`` when ``model`` is not a GraphModule.
    """
    if not isinstance(model, GraphModule):
        raise TypeError(
            f"lower_pt2e_quantized_to_arm: model must be the GraphModule from convert_pt2e, "
            f"got {type(model).__name__}"
        )
    load_ops()
    gm = copy.deepcopy(model)
    report = LoweringReport()
    _lower_patterns(gm, report)
    _lower_qdq(gm, report)
    gm.graph.eliminate_dead_code()
    gm.graph.lint()
    gm.recompile()
    gm.meta[REPORT_KEY] = report
    with torch.no_grad():
        gm(*example_inputs)
    return gm


def lowering_report(gm: GraphModule) -> LoweringReport:
    """The report of the lowering that produced ``gm``; KeyError if ``gm`` was not lowered."""
    try:
        return gm.meta[REPORT_KEY]
    except KeyError:
        raise KeyError(
            f"{type(gm).__name__} was not produced by lower_pt2e_quantized_to_arm"
        ) from None
