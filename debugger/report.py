"""The debugger's result as data: one row per matched group, plus the model output.

Columns name a pair of stages compared, e.g. ``"float~quant"`` (accumulated error),
``"float~quant:isolated"``, ``"quant~lowered"``; each holds ``{metric name: value}``.
Rendering lives in ``render_text`` / ``render_html``; ``to_dict`` is the JSON form.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pt2q.debugger.metrics import get_metric

__all__ = ["LayerRow", "UnmatchedNode", "DebugReport"]

Columns = dict[str, dict[str, float]]


@dataclass
class LayerRow:
    """One matched handle's group: where it comes from and its metrics per column.

    ``ep_node``: the float ExportedProgram node it stands for, ``absorbed_nodes`` those of the
    absorbed handles (a folded batch norm); ``folded``: pass-through nodes folded into it; ``consumer``: its first non-linear consumer (``float~quant:through``);
    ``score`` / ``why``: root-cause ranking (``rootcause``); ``health`` / ``flags``: quantization
    health of its output quantization (``pt2q.health``); ``lowered_as``: the lowering's decision.
    """

    handle: int
    module_path: str
    source: str
    op: str
    ref_node: str
    actual_node: str
    absorbed: list[int] = field(default_factory=list)
    metrics: Columns = field(default_factory=dict)
    weight_sqnr_per_channel: list[float] | None = None
    ep_node: str = ""
    absorbed_nodes: list[str] = field(default_factory=list)
    folded: list[str] = field(default_factory=list)
    consumer: str = ""
    score: float = math.nan
    why: str = ""
    health: dict[str, float] | None = None
    flags: list[str] = field(default_factory=list)
    lowered_as: str = ""

    def value(self, column: str, metric: str) -> float:
        """``metrics[column][metric]``, nan when absent."""
        return self.metrics.get(column, {}).get(metric, math.nan)


@dataclass
class UnmatchedNode:
    """A handle found on one side only."""

    handle: int
    node: str
    module_path: str


@dataclass
class DebugReport:
    """Rows (graph order), output metrics, and the match bookkeeping."""

    columns: list[str]
    metrics: list[str]
    rows: list[LayerRow]
    output: Columns
    unmatched_ref: list[UnmatchedNode] = field(default_factory=list)
    unmatched_actual: list[UnmatchedNode] = field(default_factory=list)
    num_batches: int = 0

    def row(self, handle: int) -> LayerRow:
        """The row of ``handle``; KeyError names the known handles' count."""
        for r in self.rows:
            if r.handle == handle:
                return r
        raise KeyError(f"handle {handle} is not among the {len(self.rows)} matched groups")

    def root_causes(self, k: int = 5) -> list[LayerRow]:
        """The ``k`` rows most likely to cause the error, most likely first (each has ``why``).

        Ranked by the error a row *introduces* (``pt2q.debugger.rootcause``), not by the error
        it shows; rows that introduce none (score 0 or unknown) are left out.
        """
        ranked = [r for r in self.rows if r.score > 0.0]  # nan compares False: left out
        order = {id(r): i for i, r in enumerate(self.rows)}
        ranked.sort(key=lambda r: (-r.score, order[id(r)]))
        return ranked[:k]

    def worst_first(self, column: str | None = None, metric: str = "sqnr") -> list[LayerRow]:
        """Rows sorted worst first by ``metric`` in ``column`` (nan rows first: unjudgeable)."""
        column = column or self.columns[0]
        better_high = get_metric(metric).higher_is_better

        def key(r: LayerRow) -> tuple[int, float]:
            v = r.value(column, metric)
            if math.isnan(v):
                return (0, 0.0)
            return (1, v if better_high else -v)

        return sorted(self.rows, key=key)

    def output_value(self, column: str | None = None, metric: str = "sqnr") -> float:
        """Metric of the model output in ``column`` (default: the first column)."""
        return self.output.get(column or self.columns[0], {}).get(metric, math.nan)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (inf/nan become the strings "inf", "-inf", "nan"); ``root_causes``
        lists the handles of ``root_causes(5)``, most likely first."""
        data = asdict(self)
        data["root_causes"] = [r.handle for r in self.root_causes(5)]
        return _jsonable(data)

    def to_json(self, path: str | Path | None = None) -> str:
        """The report as JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_text(self, column: str | None = None, metric: str = "sqnr", limit: int = 0) -> str:
        """Worst-first text table (see ``render_text.render_table``)."""
        from pt2q.debugger.render_text import render_table

        return render_table(self, column, metric, limit)

    def to_html(self, path: str | Path | None = None) -> str:
        """Self-contained HTML page (see ``render_html.render_html``)."""
        from pt2q.debugger.render_html import render_html

        text = render_html(self)
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_model_explorer(self, path: str | Path) -> list[Path]:
        """Write Model Explorer node-data files (``model_explorer.node_data``): ``path`` itself
        holds the accumulated SQNR, ``<stem>.<quantity>.json`` next to it the other
        quantities. Returns the written paths, the accumulated SQNR first; open them with
        ``model-explorer float.pt2 --node_data_paths=<comma-separated paths>``."""
        from pt2q.debugger.model_explorer import node_data

        path = Path(path)
        written = []
        for quantity, doc in node_data(self).items():
            out = path if quantity == "sqnr" else path.with_name(f"{path.stem}.{quantity}.json")
            out.write_text(json.dumps(doc, indent=1))
            written.append(out)
        return written


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x
