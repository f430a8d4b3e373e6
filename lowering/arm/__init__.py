"""ARM backend: pt2q's NEON int8 kernels (C, ``kernels/``) and the lowering of converted
XNNPACK-style programs onto them (``torch.ops.pt2q_arm``).

``lower_pt2e_quantized_to_arm(model, example_inputs)`` applies the pattern table
(``patterns.PATTERNS``: traced ``pt2q.qdq`` search functions, each with a rewrite that packs the
weights) to a copy of the program and returns a ``GraphModule``; ``lowering_report(gm)`` (the
same as ``pt2q.lowering.lowering_report``) says per node what was lowered, to which kernel
variant, and why the rest was not. Anything unmatched stays in reference form and still runs.
"""

from __future__ import annotations

from pt2q.lowering.arm.lower import lower_pt2e_quantized_to_arm
from pt2q.lowering.arm.patterns import PATTERNS
from pt2q.lowering.arm.rewrite import ArmOptions, ArmPattern
from pt2q.qdq.decision import LoweringReport, LoweringStatus, NodeDecision
from pt2q.qdq.decision import read_report as lowering_report

__all__ = [
    "lower_pt2e_quantized_to_arm",
    "lowering_report",
    "LoweringReport",
    "LoweringStatus",
    "NodeDecision",
    "PATTERNS",
    "ArmPattern",
    "ArmOptions",
]
