"""What a lowering did with each node: one record type for every backend.

Every lowering (x86 oneDNN, ARM NEON, a user's third backend) records one :class:`NodeDecision`
per node of the reference program it looked at, collects them in a :class:`LoweringReport`, and
attaches the report to the ``torch.fx.GraphModule`` it returns with :func:`attach_report`.
``pt2q.lowering.lowering_report(module)`` and the debugger read it back with :func:`read_report`
and join it with quantizer coverage and SQNR by debug handle.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

from torch.fx import GraphModule

__all__ = [
    "LoweringStatus",
    "NodeDecision",
    "LoweringReport",
    "attach_report",
    "read_report",
    "REPORT_ATTR",
]

# Attribute of the returned GraphModule that holds its LoweringReport (survives deepcopy).
REPORT_ATTR = "pt2q_lowering_report"


class LoweringStatus(str, enum.Enum):
    """The fate of one node."""

    LOWERED = "lowered"  # runs as an int8 (or int4) kernel of the backend
    FUSED = "fused"  # folded into another node's kernel (post-op, requantize, q/dq pair)
    REFERENCE = "reference"  # kept in the portable quantized_decomposed q/dq form
    FLOAT = "float"  # runs in floating point


@dataclass(frozen=True)
class NodeDecision:
    """One node of the reference program and what the lowering made of it.

    ``node`` is the node's name in the reference program, ``op`` its target as text
    (``"aten.linear.default"``), ``handle`` its numeric-debug handle (``None`` when it has
    none), ``kernel`` the kernel it runs as (``"onednn.qlinear_pointwise"``,
    ``"qs8-gemm/4x16-neon-dot"``) or, for ``FUSED``, the name of the node whose kernel absorbed
    it; ``reason`` says why, always non-empty for ``REFERENCE`` and ``FLOAT``.
    """

    node: str
    op: str
    handle: int | None
    status: LoweringStatus
    kernel: str | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.status, LoweringStatus):
            raise TypeError(
                f"NodeDecision({self.node!r}): status must be a LoweringStatus, got {self.status!r}"
            )
        if self.status in (LoweringStatus.REFERENCE, LoweringStatus.FLOAT) and not self.reason:
            raise ValueError(
                f"NodeDecision({self.node!r}): a node kept {self.status.value} needs a reason; "
                "say why the backend did not take it"
            )

    @property
    def is_lowered(self) -> bool:
        return self.status is LoweringStatus.LOWERED


@dataclass
class LoweringReport:
    """All decisions of one lowering call, in graph order, plus backend facts (ISA, counters)."""

    backend: str
    decisions: list[NodeDecision] = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)

    def __iter__(self) -> Iterator[NodeDecision]:
        return iter(self.decisions)

    def __len__(self) -> int:
        return len(self.decisions)

    def with_status(self, status: LoweringStatus) -> list[NodeDecision]:
        return [d for d in self.decisions if d.status is status]

    @property
    def lowered(self) -> list[NodeDecision]:
        return self.with_status(LoweringStatus.LOWERED)

    @property
    def not_lowered(self) -> list[NodeDecision]:
        """Decisions whose node runs neither as nor inside a backend kernel."""
        return [
            d
            for d in self.decisions
            if d.status in (LoweringStatus.REFERENCE, LoweringStatus.FLOAT)
        ]

    def by_node(self) -> dict[str, NodeDecision]:
        return {d.node: d for d in self.decisions}

    def by_handle(self) -> dict[int, NodeDecision]:
        """Handle -> decision; for a handle seen on several nodes, the most lowered one wins."""
        rank = {
            LoweringStatus.LOWERED: 0,
            LoweringStatus.FUSED: 1,
            LoweringStatus.REFERENCE: 2,
            LoweringStatus.FLOAT: 3,
        }
        out: dict[int, NodeDecision] = {}
        for d in self.decisions:
            if d.handle is None:
                continue
            old = out.get(d.handle)
            if old is None or rank[d.status] < rank[old.status]:
                out[d.handle] = d
        return out

    def kernel_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.lowered:
            assert d.kernel is not None
            counts[d.kernel] = counts.get(d.kernel, 0) + 1
        return counts

    def __str__(self) -> str:
        head = f"{self.backend} lowering: {len(self.lowered)} lowered, "
        head += f"{len(self.with_status(LoweringStatus.FUSED))} fused, "
        head += f"{len(self.not_lowered)} kept"
        lines = [head]
        for d in self.decisions:
            what = (
                d.kernel if d.status in (LoweringStatus.LOWERED, LoweringStatus.FUSED) else d.reason
            )
            lines.append(f"  {d.status.value:<9} {d.node} ({d.op}): {what}")
        return "\n".join(lines)


def attach_report(module: GraphModule, report: LoweringReport) -> GraphModule:
    """Attach ``report`` to the lowered ``module`` and return the module."""
    setattr(module, REPORT_ATTR, report)
    return module


def read_report(module: object) -> LoweringReport:
    """The report a lowering attached to ``module``.

    Raises ``TypeError`` naming what was found when ``module`` is not a lowered program.
    """
    report = getattr(module, REPORT_ATTR, None)
    if not isinstance(report, LoweringReport):
        raise TypeError(
            f"expected a module returned by a pt2q lowering (lower_pt2e_quantized_to_x86 / "
            f"_to_arm), got {type(module).__name__} without a lowering report; lower the "
            "converted program first"
        )
    return report
