"""Self-contained offline HTML page of a ``DebugReport``: an inline SVG plot of SQNR per layer
(graph order, one polyline per column) and the worst-first table. No script, no external link.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

from pt2q.debugger.render_text import fmt

if TYPE_CHECKING:
    from pt2q.debugger.report import DebugReport

__all__ = ["render_html", "render_svg"]

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
_W, _H, _PAD = 720, 260, 40


def render_svg(report: DebugReport, metric: str = "sqnr") -> str:
    """SVG line plot of ``metric`` per matched group (x: graph order) for every column.

    Infinite values are drawn at the top edge and NaN values are skipped.
    """
    n = max(len(report.rows), 1)
    finite = [
        r.value(c, metric)
        for r in report.rows
        for c in report.columns
        if math.isfinite(r.value(c, metric))
    ]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 1.0, hi + 1.0

    def xy(i: int, v: float) -> tuple[float, float]:
        x = _PAD + (_W - 2 * _PAD) * (i / max(n - 1, 1))
        v = hi if v == math.inf else lo if v == -math.inf else v
        return x, _H - _PAD - (_H - 2 * _PAD) * (v - lo) / (hi - lo)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'role="img" aria-label="{html.escape(metric)} per layer">',
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#888"/>',
        f'<line x1="{_PAD}" y1="{_PAD}" x2="{_PAD}" y2="{_H - _PAD}" stroke="#888"/>',
        f'<text x="4" y="{_PAD}" font-size="11">{fmt(hi)}</text>',
        f'<text x="4" y="{_H - _PAD}" font-size="11">{fmt(lo)}</text>',
    ]
    for k, column in enumerate(report.columns):
        color = _COLORS[k % len(_COLORS)]
        pts = [
            xy(i, r.value(column, metric))
            for i, r in enumerate(report.rows)
            if not math.isnan(r.value(column, metric))
        ]
        if pts:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            parts.append(f'<polyline fill="none" stroke="{color}" points="{coords}"/>')
            parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in pts]
        parts.append(
            f'<text x="{_W - _PAD - 170}" y="{14 + 14 * k}" font-size="11" fill="{color}">'
            f"{html.escape(metric)}[{html.escape(column)}]</text>"
        )
    for i, r in enumerate(report.rows):
        x, _ = xy(i, lo)
        label = html.escape(r.module_path or r.actual_node)
        parts.append(
            f'<text x="{x:.1f}" y="{_H - _PAD + 12}" font-size="9" '
            f'transform="rotate(30 {x:.1f} {_H - _PAD + 12})">{label}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def render_html(report: DebugReport, metric: str = "sqnr") -> str:
    """The full page: title, output metrics, the SVG plot, the worst-first table."""
    head = ["rank", "module", "op", "node"] + [f"{metric}[{c}]" for c in report.columns]
    head += ["weight min ch", "source"]
    rows = []
    for i, r in enumerate(report.worst_first(None, metric), 1):
        wmin = fmt(min(r.weight_sqnr_per_channel)) if r.weight_sqnr_per_channel else ""
        cells = [str(i), r.module_path or "<root>", r.op, r.actual_node]
        cells += [fmt(r.value(c, metric)) for c in report.columns] + [wmin, r.source]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    outputs = ", ".join(
        f"{html.escape(c)}: {fmt(report.output_value(c, metric))}"
        for c in report.columns
        if c in report.output
    )
    unmatched = "".join(
        f"<p>{label}: {html.escape(', '.join(u.node for u in items))}</p>"
        for label, items in (
            ("Unmatched float nodes", report.unmatched_ref),
            ("Unmatched quantized nodes", report.unmatched_actual),
        )
        if items
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>pt2q numeric debug report</title>
<style>body{{font-family:sans-serif;margin:1em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:12px}}</style></head>
<body><h1>pt2q numeric debug report</h1>
<p>Output {html.escape(metric)}: {outputs}. {len(report.rows)} matched groups,
{report.num_batches} batches.</p>
{render_svg(report, metric)}
<table><tr>{"".join(f"<th>{html.escape(h)}</th>" for h in head)}</tr>
{"".join(rows)}
</table>{unmatched}</body></html>
"""
