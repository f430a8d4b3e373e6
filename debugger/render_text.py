"""Text report of a ``DebugReport``: the root causes first, then the worst-first table.

Root causes (error introduced, most likely first):
  1. fc2 (linear, node linear_1) score 0.0312: quantizing it alone gives 15.1 dB at its output
     model.py:42
Output sqnr: float~quant 24.1
rank  module  op      node      sqnr[float~quant]  ...  clip  top2  range/p99.9  edges  flags  source
   1  fc2     linear  linear_1              24.1        0     0.12  1.3          0             model.py:42
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from pt2q.debugger.health_columns import HEALTH_COLUMNS

if TYPE_CHECKING:
    from pt2q.debugger.report import DebugReport, LayerRow

__all__ = ["render_table", "render_root_causes", "fmt", "HEALTH_HEADS", "health_cells"]

HEALTH_HEADS = ("clip", "top2", "range/p99.9", "edges", "flags")


def fmt(value: float) -> str:
    """A metric value for humans: 4 significant digits, inf/nan spelled out."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def short_source(path: str) -> str:
    """``file.py:line`` of a ``/long/path/file.py:line``."""
    file, _, line = path.rpartition(":")
    return f"{os.path.basename(file)}:{line}" if file else path


def health_cells(row: LayerRow) -> list[str]:
    """The health columns of ``row`` (blank when its output is not statically quantized)."""
    if row.health is None:
        return [""] * len(HEALTH_HEADS)
    return [fmt(row.health[c]) for c in HEALTH_COLUMNS] + ["; ".join(row.flags)]


def describe(row: LayerRow) -> str:
    """``module (op, node n)`` naming a row."""
    return f"{row.module_path or '<root>'} ({row.op}, node {row.actual_node})"


def render_root_causes(report: DebugReport, k: int = 5) -> str:
    """The root-cause list (``DebugReport.root_causes``) as numbered lines."""
    causes = report.root_causes(k)
    lines = ["Root causes (error introduced, most likely first):"]
    if not causes:
        lines.append("  none: no group introduces a measurable error")
    for i, r in enumerate(causes, 1):
        flags = f" [{'; '.join(r.flags)}]" if r.flags else ""
        lines.append(f"  {i}. {describe(r)} score {r.score:.3g}: {r.why}{flags}")
        if r.source:
            lines.append(f"     {short_source(r.source)}")
    return "\n".join(lines)


def render_table(
    report: DebugReport, column: str | None = None, metric: str = "sqnr", limit: int = 0
) -> str:
    """Root causes, then the rows sorted worst first by ``metric`` in ``column``; ``limit`` > 0
    keeps that many rows. Every column's ``metric`` is shown, then the health columns; the
    output row comes first, then unmatched handles."""
    column = column or report.columns[0]
    rows = report.worst_first(column, metric)
    if limit > 0:
        rows = rows[:limit]
    head = ["rank", "module", "op", "node"] + [f"{metric}[{c}]" for c in report.columns]
    head += [*HEALTH_HEADS, "weight min ch"]
    lowered = any(r.lowered_as for r in report.rows)
    head += (["lowered as"] if lowered else []) + ["source"]
    table = [head]
    out = ["", "(output)", "", ""] + [
        fmt(report.output_value(c, metric)) if c in report.output else "-" for c in report.columns
    ]
    table.append(out + [""] * (len(head) - len(out)))
    for i, r in enumerate(rows, 1):
        node = r.actual_node + (f" (+{len(r.absorbed)} folded)" if r.absorbed else "")
        wmin = fmt(min(r.weight_sqnr_per_channel)) if r.weight_sqnr_per_channel else ""
        cells = [str(i), r.module_path or "<root>", r.op, node]
        cells += [fmt(r.value(c, metric)) if c in r.metrics else "-" for c in report.columns]
        cells += [*health_cells(r), wmin] + ([r.lowered_as] if lowered else [])
        table.append(cells + [short_source(r.source)])
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
    return render_root_causes(report) + "\n\n" + "\n".join(lines)
