"""The one vocabulary for reading and rewriting the quantized_decomposed reference program."""

from pt2q.qdq.decision import (
    REPORT_ATTR,
    LoweringReport,
    LoweringStatus,
    NodeDecision,
    attach_report,
    read_report,
)

__all__ = [
    "REPORT_ATTR",
    "LoweringReport",
    "LoweringStatus",
    "NodeDecision",
    "attach_report",
    "read_report",
]
