"""x86 lowering: converted (reference) programs -> oneDNN int8 kernels (Inductor's passes).

``lower_pt2e_quantized_to_x86(model, example_inputs)`` returns an :class:`X86LoweredModule`, a
``torch.fx.GraphModule`` whose graph holds the ``onednn.qconv_pointwise`` /
``qlinear_pointwise`` ops; ``pt2q.lowering.lowering_report(m)`` (or ``lowering_coverage(m)``,
``m.report``) is its ``pt2q.qdq.LoweringReport``. ``package_x86`` writes an AOTInductor package.
"""

from __future__ import annotations

from pt2q.lowering.x86.isa import CpuInt8Isa, detect_isa
from pt2q.lowering.x86.lower import lower_pt2e_quantized_to_x86
from pt2q.lowering.x86.module import X86LoweredModule
from pt2q.lowering.x86.package import package_x86
from pt2q.qdq import LoweringReport, NodeDecision, read_report

__all__ = [
    "lower_pt2e_quantized_to_x86",
    "package_x86",
    "lowering_coverage",
    "X86LoweredModule",
    "LoweringReport",
    "NodeDecision",
    "CpuInt8Isa",
    "detect_isa",
]


def lowering_coverage(lowered: object) -> LoweringReport:
    """The report of an x86 lowering (same as ``pt2q.lowering.lowering_report``)."""
    return read_report(lowered)
