"""Worst-first text table of a ``DebugReport``.

rank  module   op      sqnr[float~quant]  sqnr[float~quant:isolated]  ...  source
   1  fc2      linear              24.1                        31.0        model.py:42
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pt2q.debugger.report import DebugReport

__all__ = ["render_table", "fmt"]


def fmt(value: float) -> str:
    """A metric value for humans: 4 significant digits, inf/nan spelled out."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def _short(path: str) -> str:
    file, _, line = path.rpartition(":")
    return f"{os.path.basename(file)}:{line}" if file else path


def render_table(
    report: DebugReport, column: str | None = None, metric: str = "sqnr", limit: int = 0
) -> str:
    """Rows sorted worst first by ``metric`` in ``column``; ``limit`` > 0 keeps that many.

    Every column's ``metric`` is shown; the output row comes first, then unmatched handles.
    """
    column = column or report.columns[0]
    rows = report.worst_first(column, metric)
    if limit > 0:
        rows = rows[:limit]
    head = ["rank", "module", "op", "node"] + [f"{metric}[{c}]" for c in report.columns]
    head += ["weight min ch", "source"]
    table = [head]
    out = ["", "(output)", "", ""] + [
        fmt(report.output_value(c, metric)) if c in report.output else "-" for c in report.columns
    ]
    table.append(out + ["", ""])
    for i, r in enumerate(rows, 1):
        node = r.actual_node + (f" (+{len(r.absorbed)} folded)" if r.absorbed else "")
        wmin = fmt(min(r.weight_sqnr_per_channel)) if r.weight_sqnr_per_channel else ""
        cells = [str(i), r.module_path or "<root>", r.op, node]
        cells += [fmt(r.value(c, metric)) for c in report.columns]
        table.append(cells + [wmin, _short(r.source)])
    widths = [max(len(row[j]) for row in table) for j in range(len(head))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for label, items in (
        ("unmatched float", report.unmatched_ref),
        ("unmatched quantized", report.unmatched_actual),
    ):
        if items:
            names = ", ".join(f"{u.node}[{u.module_path or '<root>'}]" for u in items)
            lines.append(f"{label} ({len(items)}): {names}")
    lines.append(f"{len(report.rows)} matched groups over {report.num_batches} batches")
    return "\n".join(lines)
