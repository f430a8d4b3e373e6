"""What the ARM lowering did: per anchor node, lowered (and to which variant) or why not."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Decision", "LoweringReport", "REPORT_KEY"]

REPORT_KEY = "pt2q_arm_lowering"


@dataclass(frozen=True)
class Decision:
    """One node the pattern table looked at."""

    node: str
    op: str
    lowered: bool
    detail: str  # the variant when lowered, the reason otherwise


@dataclass
class LoweringReport:
    """All decisions of one ``lower_pt2e_quantized_to_arm`` call (in graph order)."""

    decisions: list[Decision] = field(default_factory=list)

    @property
    def lowered(self) -> list[Decision]:
        return [d for d in self.decisions if d.lowered]

    @property
    def not_lowered(self) -> list[Decision]:
        return [d for d in self.decisions if not d.lowered]

    def __str__(self) -> str:
        lines = [f"ARM lowering: {len(self.lowered)} lowered, {len(self.not_lowered)} kept"]
        for d in self.decisions:
            mark = "lowered" if d.lowered else "kept   "
            lines.append(f"  {mark} {d.node} ({d.op}): {d.detail}")
        return "\n".join(lines)
