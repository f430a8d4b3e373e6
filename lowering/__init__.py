"""Backends for converted (reference) programs: x86 via Inductor's oneDNN int8 passes, ARM via
pt2q's NEON kernels. Each backend imports lazily so that using one never loads the other.

Every lowering takes (converted GraphModule or ExportedProgram, example inputs), never mutates
its input, returns a ``torch.fx.GraphModule`` and attaches one ``LoweringReport`` of
``NodeDecision`` records; :func:`lowering_report` reads it for any backend. How to add a backend:
``lowering/README.md``.
"""

from __future__ import annotations

from typing import Any

from pt2q.qdq.decision import LoweringReport, LoweringStatus, NodeDecision, read_report

__all__ = [
    "lower_pt2e_quantized_to_x86",
    "lower_pt2e_quantized_to_arm",
    "lowering_report",
    "LoweringReport",
    "LoweringStatus",
    "NodeDecision",
]


def lowering_report(module: object) -> LoweringReport:
    """What the lowering that produced ``module`` did with each node (any backend).

    Raises ``TypeError`` naming what was found when ``module`` did not come from a lowering.
    """
    return read_report(module)


def __getattr__(name: str) -> Any:
    if name == "lower_pt2e_quantized_to_x86":
        from pt2q.lowering.x86 import lower_pt2e_quantized_to_x86

        return lower_pt2e_quantized_to_x86
    if name == "lower_pt2e_quantized_to_arm":
        from pt2q.lowering.arm import lower_pt2e_quantized_to_arm

        return lower_pt2e_quantized_to_arm
    raise AttributeError(f"module 'pt2q.lowering' has no attribute {name!r}")
