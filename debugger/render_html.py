"""Self-contained offline HTML page of a ``DebugReport`` (no network, no external file).

The page, top to bottom:

* the output metrics and the **root causes** (``DebugReport.root_causes``) with their ``why``,
  health flags and source line;
* an inline SVG **plot of SQNR per layer in model order**, one line per column; the y axis is
  clipped to ``[max(min, -20), min(max, 60)]`` dB rounded to 10 dB, values beyond it (and
  ``inf``) sit on the edge as triangles whose tooltip gives the real value; the root causes are
  ringed in red and numbered; x labels are thinned to one per ~24 px;
* a **table** of every row in model order: click a header to sort (numbers numerically, ``inf``
  above every finite value), type in the filter box to keep rows containing the text, tick
  "flagged only" for rows with a health flag or a root-cause rank (the URL fragment
  ``#sort=<column index>&desc=1&filter=<text>&flagged=1`` sets the same on load). With a
  lowered program whose
  lowering attached a ``LoweringReport`` there is a "lowered as" column.

The script is inline; when it has wired the page it writes ``ready`` and the row count into
``#pt2q-status`` (``data-ready="1"``), and any script error into ``#pt2q-errors``, so a headless
browser can tell the page works.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

from pt2q.debugger.render_text import HEALTH_HEADS, describe, fmt, health_cells, short_source

if TYPE_CHECKING:
    from pt2q.debugger.report import DebugReport, LayerRow

__all__ = ["render_html", "render_svg", "axis_range"]

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b")
_H, _TOP, _BOTTOM, _LEFT, _RIGHT = 420, 48, 170, 180, 20
_MIN_DB, _MAX_DB = -20.0, 60.0
_LABEL_PX = 24


def axis_range(values: list[float]) -> tuple[float, float]:
    """The clipped y range of the plot for ``values`` (see the module docstring)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 60.0
    lo = max(min(finite), _MIN_DB)
    hi = min(max(finite), _MAX_DB)
    lo, hi = 10.0 * math.floor(lo / 10.0), 10.0 * math.ceil(hi / 10.0)
    return (lo, hi) if hi > lo else (lo, lo + 10.0)


def _label(row: LayerRow) -> str:
    text = row.module_path or row.actual_node
    text = text if len(text) <= 30 else text[:15] + "\u2026" + text[-14:]  # keep both ends
    return f"{text} ({row.actual_node})" if row.module_path else text


def render_svg(report: DebugReport, metric: str = "sqnr") -> str:
    """The SVG plot of ``metric`` per row in model order (see the module docstring)."""
    rows = report.rows
    n = max(len(rows), 1)
    step = max(8.0, 900.0 / n)
    width = _LEFT + _RIGHT + step * n
    columns = [c for c in report.columns if any(c in r.metrics for r in rows)]
    lo, hi = axis_range([r.value(c, metric) for r in rows for c in columns])

    def x(i: int) -> float:
        return _LEFT + step * (i + 0.5)

    def y(v: float) -> float:
        v = min(max(v, lo), hi)
        return _TOP + (_H - _TOP - _BOTTOM) * (hi - v) / (hi - lo)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{_H}" '
        f'id="pt2q-plot" role="img" aria-label="{html.escape(metric)} per layer, model order">',
        '<rect width="100%" height="100%" fill="#fff"/>',
    ]
    for k in range(int((hi - lo) / 10.0) + 1):
        v = lo + 10.0 * k
        out.append(
            f'<line x1="{_LEFT}" x2="{width - _RIGHT:.0f}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            f'stroke="#e5e5e5"/><text x="{_LEFT - 6}" y="{y(v) + 4:.1f}" font-size="11" '
            f'text-anchor="end">{v:.0f}</text>'
        )
    mid, lx = (_TOP + _H - _BOTTOM) / 2, _LEFT - 36
    out.append(
        f'<text x="{lx}" y="{mid:.0f}" font-size="11" transform="rotate(-90 {lx} {mid:.0f})" '
        f'text-anchor="middle">{html.escape(metric)} (dB, clipped to [{lo:.0f}, {hi:.0f}])</text>'
    )
    causes = {id(r): i for i, r in enumerate(report.root_causes(5), 1)}
    for k, column in enumerate(columns):
        color = _COLORS[k % len(_COLORS)]
        segment: list[str] = []
        marks: list[str] = []
        for i, r in enumerate(rows):
            v = r.value(column, metric)
            if math.isnan(v):
                if len(segment) > 1:
                    out.append(_polyline(segment, color))
                segment = []
                continue
            px, py = x(i), y(v)
            segment.append(f"{px:.1f},{py:.1f}")
            tip = f"<title>{html.escape(describe(r))}: {column} {fmt(v)} dB</title>"
            if v > hi or v < lo:
                d = -1 if v > hi else 1
                pts = f"{px - 4:.1f},{py - 3 * d:.1f} {px + 4:.1f},{py - 3 * d:.1f} {px:.1f},{py + 4 * d:.1f}"
                marks.append(f'<polygon points="{pts}" fill="{color}">{tip}</polygon>')
            else:
                marks.append(
                    f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{color}">{tip}</circle>'
                )
        if len(segment) > 1:
            out.append(_polyline(segment, color))
        out += marks
        out.append(
            f'<rect x="{_LEFT + 10 + 190 * k}" y="8" width="10" height="10" fill="{color}"/>'
            f'<text x="{_LEFT + 24 + 190 * k}" y="17" font-size="11">'
            f"{html.escape(column)}</text>"
        )
    stride = max(1, math.ceil(_LABEL_PX / step))
    cause_at = sorted(i for i, r in enumerate(rows) if id(r) in causes)
    base = _H - _BOTTOM + 8
    for i, r in enumerate(rows):
        rank = causes.get(id(r))
        if rank is not None:
            v = r.value(report.columns[0], metric)
            cy = y(v) if not math.isnan(v) else base - 20
            out.append(
                f'<circle cx="{x(i):.1f}" cy="{cy:.1f}" r="7" fill="none" stroke="#d62728" '
                f'stroke-width="2" class="cause"/><text x="{x(i):.1f}" y="{cy - 10:.1f}" '
                f'font-size="11" fill="#d62728" text-anchor="middle">#{rank}</text>'
            )
        # every stride-th row is labelled, the causes always; a plain label next to a cause's
        # label would overlap it and is left out
        near_cause = any(abs(i - c) < stride for c in cause_at)
        if rank is not None or (i % stride == 0 and not near_cause):
            fill = "#d62728" if rank is not None else "#333"
            out.append(
                f'<text x="{x(i):.1f}" y="{base}" font-size="10" fill="{fill}" '
                f'text-anchor="end" transform="rotate(-45 {x(i):.1f} {base})">'
                f"{html.escape(_label(r))}</text>"
            )
    out.append("</svg>")
    return "\n".join(out)


def _polyline(points: list[str], color: str) -> str:
    return (
        f'<polyline fill="none" stroke="{color}" stroke-width="1.2" points="{" ".join(points)}"/>'
    )


def _cell(text: str, sort_value: float | None = None) -> str:
    if sort_value is None:
        return f"<td>{html.escape(text)}</td>"
    v = "NaN" if math.isnan(sort_value) else repr(sort_value).replace("inf", "Infinity")
    return f'<td data-v="{v}">{html.escape(text)}</td>'


def _table(report: DebugReport, metric: str) -> str:
    lowered = any(r.lowered_as for r in report.rows)
    head = ["#", "cause", "module", "op", "node"] + [f"{metric} {c}" for c in report.columns]
    head += [*HEALTH_HEADS, "weight min ch"] + (["lowered as"] if lowered else []) + ["source"]
    numeric = {0, 1} | set(range(5, 5 + len(report.columns) + 4))
    causes = {id(r): i for i, r in enumerate(report.root_causes(5), 1)}
    ths = "".join(
        f'<th data-num="{1 if j in numeric or h == "weight min ch" else 0}">{html.escape(h)}</th>'
        for j, h in enumerate(head)
    )
    body = []
    for i, r in enumerate(report.rows):
        rank = causes.get(id(r))
        health = health_cells(r)
        hvals = [r.health[k] for k in r.health] if r.health else [math.nan] * 4
        wmin = min(r.weight_sqnr_per_channel) if r.weight_sqnr_per_channel else math.nan
        cells = [_cell(str(i), float(i)), _cell(f"#{rank}" if rank else "", float(rank or 99))]
        cells += [_cell(r.module_path or "<root>"), _cell(r.op), _cell(r.actual_node)]
        cells += [
            _cell(fmt(r.value(c, metric)) if c in r.metrics else "-", r.value(c, metric))
            for c in report.columns
        ]
        cells += [_cell(t, v) for t, v in zip(health[:4], hvals, strict=True)]
        cells += [_cell(health[4]), _cell(fmt(wmin) if r.weight_sqnr_per_channel else "", wmin)]
        cells += [_cell(r.lowered_as)] if lowered else []
        cells.append(
            f'<td title="{html.escape(r.source)}">{html.escape(short_source(r.source))}</td>'
        )
        flagged = "1" if (r.flags or rank) else "0"
        cls = ' class="cause"' if rank else ""
        body.append(f'<tr data-flagged="{flagged}"{cls}>{"".join(cells)}</tr>')
    return (
        f'<table id="pt2q-table"><thead><tr>{ths}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _causes(report: DebugReport) -> str:
    items = []
    for r in report.root_causes(5):
        flags = f' <span class="flag">{html.escape("; ".join(r.flags))}</span>' if r.flags else ""
        items.append(
            f"<li><b>{html.escape(describe(r))}</b>: {html.escape(r.why)}{flags}"
            f' <span class="src">{html.escape(short_source(r.source))}</span></li>'
        )
    if not items:
        return "<p>No group introduces a measurable error.</p>"
    return f'<ol id="pt2q-causes">{"".join(items)}</ol>'


_CSS = """body{font-family:system-ui,sans-serif;margin:1em 1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.2em}
#plotbox{overflow-x:auto;border:1px solid #ddd}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px}
th{background:#f3f3f3;cursor:pointer;position:sticky;top:0}th.asc:after{content:" \\25B2"}
th.desc:after{content:" \\25BC"}tr.cause td{background:#fdecea}.flag{color:#b35c00}
.src{color:#777;font-size:90%}#pt2q-errors{color:#d62728}
td:nth-last-child(-n+3){white-space:nowrap}"""

_JS = """(function(){
var errs=document.getElementById('pt2q-errors');
window.addEventListener('error',function(e){errs.textContent+='error: '+e.message+'\\n';});
var table=document.getElementById('pt2q-table'),tbody=table.tBodies[0];
var rows=Array.prototype.slice.call(tbody.rows);
function key(tr,j,num){var c=tr.cells[j];if(!num)return c.textContent;
 var v=parseFloat(c.getAttribute('data-v'));return isNaN(v)?-Infinity:v;}
Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,j){
 th.addEventListener('click',function(){
  var num=th.getAttribute('data-num')==='1',asc=!th.classList.contains('asc');
  Array.prototype.forEach.call(th.parentNode.cells,function(o){o.classList.remove('asc','desc');});
  th.classList.add(asc?'asc':'desc');
  rows.sort(function(a,b){var x=key(a,j,num),y=key(b,j,num);
   var r=x<y?-1:x>y?1:0;return asc?r:-r;});
  rows.forEach(function(tr){tbody.appendChild(tr);});});});
var box=document.getElementById('pt2q-filter'),only=document.getElementById('pt2q-flagged');
function apply(){var q=box.value.toLowerCase(),shown=0;
 rows.forEach(function(tr){var ok=tr.textContent.toLowerCase().indexOf(q)>=0&&
  (!only.checked||tr.getAttribute('data-flagged')==='1');
  tr.style.display=ok?'':'none';if(ok)shown++;});
 document.getElementById('pt2q-count').textContent=shown+' of '+rows.length+' rows';}
box.addEventListener('input',apply);only.addEventListener('change',apply);
var opts={};location.hash.replace(/^#/,'').split('&').forEach(function(kv){
 var p=kv.split('=');if(p[0])opts[p[0]]=decodeURIComponent(p[1]||'');});
if(opts.filter)box.value=opts.filter;if(opts.flagged==='1')only.checked=true;
if(opts.sort){var th=table.tHead.rows[0].cells[parseInt(opts.sort,10)];th.click();
 if(opts.desc==='1')th.click();}
apply();
var st=document.getElementById('pt2q-status');st.setAttribute('data-ready','1');
st.textContent='ready '+rows.length+' rows';
})();"""


def render_html(report: DebugReport, metric: str = "sqnr") -> str:
    """The full page (see the module docstring)."""
    outputs = ", ".join(
        f"{html.escape(c)} {fmt(report.output_value(c, metric))}"
        for c in report.columns
        if c in report.output
    )
    unmatched = "".join(
        f"<p>{label} ({len(items)}): {html.escape(', '.join(u.node for u in items))}</p>"
        for label, items in (
            ("Unmatched float nodes", report.unmatched_ref),
            ("Unmatched quantized nodes", report.unmatched_actual),
        )
        if items
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>pt2q numeric debug report</title>
<style>{_CSS}</style></head>
<body><h1>pt2q numeric debug report</h1>
<p>Model output {html.escape(metric)} (dB): {outputs}. {len(report.rows)} layers,
{report.num_batches} batch(es).</p>
<h2>Root causes (error introduced, most likely first)</h2>
{_causes(report)}
<h2>{html.escape(metric)} per layer, model order</h2>
<div id="plotbox">{render_svg(report, metric)}</div>
<h2>Layers</h2>
<p><input id="pt2q-filter" type="search" placeholder="filter rows (module, op, node, flag)"
 size="40"> <label><input id="pt2q-flagged" type="checkbox"> flagged only</label>
 <span id="pt2q-count"></span> &middot; click a header to sort</p>
{_table(report, metric)}
{unmatched}
<pre id="pt2q-errors"></pre><p id="pt2q-status" data-ready="0">script not run</p>
<script>{_JS}</script>
</body></html>
"""
