"""x86 lowering: converted (reference) programs -> Inductor's fused oneDNN int8 kernels.

``lower_pt2e_quantized_to_x86(model, example_inputs)`` returns a compiled module; its
``.report`` (a :class:`LoweringReport`) is the coverage query: which conv / linear nodes run as
oneDNN int8 kernels and why the others do not. ``lowering_coverage`` returns it.
"""

from __future__ import annotations

from pt2q.lowering.x86.coverage import LoweringReport, NodeLowering
from pt2q.lowering.x86.isa import CpuInt8Isa, detect_isa
from pt2q.lowering.x86.lower import lower_pt2e_quantized_to_x86
from pt2q.lowering.x86.module import X86LoweredModule

__all__ = [
    "lower_pt2e_quantized_to_x86",
    "lowering_coverage",
    "X86LoweredModule",
    "LoweringReport",
    "NodeLowering",
    "CpuInt8Isa",
    "detect_isa",
]


def lowering_coverage(lowered: X86LoweredModule) -> LoweringReport:
    """Which conv / linear nodes of ``lowered`` run as oneDNN int8 kernels, and why not."""
    if not isinstance(lowered, X86LoweredModule):
        raise TypeError(
            "lowering_coverage: expected the module returned by lower_pt2e_quantized_to_x86, "
            f"got {type(lowered).__name__}"
        )
    return lowered.report
