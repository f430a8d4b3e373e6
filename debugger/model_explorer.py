"""The report as node data for Google's Model Explorer (``pip install ai-edge-model-explorer``).

Model Explorer draws a float ``ExportedProgram`` (its PyTorch adapter names each node by the
program's node name, in a graph called ``"graph"``) and colours nodes with *node data* files:
``{"graph": {"results": {node name: {"value": number, "bgColor": ...}}, "thresholds": [...]}}``
(the JSON of its ``model_explorer.node_data_builder.ModelNodeData``). ``node_data`` gives one
such document per quantity, keyed to the float program's nodes (``LayerRow.ep_node``, plus the
nodes folded into the row: a folded batch norm, pass-through views):

    sqnr            accumulated SQNR (dB), red <= 10 < orange <= 20 < yellow <= 30 < green <= 45
    isolated_sqnr   the row quantized alone (same colours)
    through_sqnr    the row quantized alone, at its first non-linear consumer (same colours)
    root_cause      rank 1..k of the root causes only (red shades)
    health_flags    number of health flags of the row's output quantization (0 white, 1+ orange,
                    3+ red)

Values must be finite numbers: ``+inf`` dB is written as ``INF_DB`` and ``-inf`` as
``-INF_DB``; NaN rows are left out. Open with
``model-explorer float.pt2 --node_data_paths=r.sqnr.json,r.isolated_sqnr.json,...``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pt2q.debugger.report import DebugReport, LayerRow

__all__ = ["node_data", "GRAPH_ID", "INF_DB", "QUANTITIES"]

GRAPH_ID = "graph"  # the graph id Model Explorer's ExportedProgram adapter uses
INF_DB = 200.0
QUANTITIES = ("sqnr", "isolated_sqnr", "through_sqnr", "root_cause", "health_flags")

_SQNR_THRESHOLDS = [
    {"value": 10, "bgColor": "#d62728"},
    {"value": 20, "bgColor": "#ff7f0e"},
    {"value": 30, "bgColor": "#ffdd57"},
    {"value": 45, "bgColor": "#b7e1a1"},
]
_COLUMNS = {
    "sqnr": "float~quant",
    "isolated_sqnr": "float~quant:isolated",
    "through_sqnr": "float~quant:through",
}


def _finite(v: float) -> float:
    return max(-INF_DB, min(INF_DB, v))


def _nodes(row: LayerRow) -> list[str]:
    return [row.ep_node, *row.absorbed_nodes, *row.folded]


def _results(rows: list[tuple[LayerRow, float]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for row, value in rows:
        if math.isnan(value):
            continue
        for name in _nodes(row):
            out.setdefault(name, {"value": _finite(value)})
    return out


def node_data(report: DebugReport, metric: str = "sqnr") -> dict[str, dict[str, Any]]:
    """{quantity: Model Explorer node-data document} (see the module docstring)."""
    docs: dict[str, dict[str, Any]] = {}
    for quantity, column in _COLUMNS.items():
        if column not in report.columns:
            continue
        results = _results([(r, r.value(column, metric)) for r in report.rows])
        docs[quantity] = {
            GRAPH_ID: {
                "name": f"pt2q {metric} {column}",
                "results": results,
                "thresholds": _SQNR_THRESHOLDS,
            }
        }
    causes = report.root_causes(5)
    docs["root_cause"] = {
        GRAPH_ID: {
            "name": "pt2q root cause rank",
            "results": _results([(r, float(i)) for i, r in enumerate(causes, 1)]),
            "thresholds": [
                {"value": 1, "bgColor": "#d62728"},
                {"value": 3, "bgColor": "#ff7f0e"},
                {"value": 5, "bgColor": "#ffdd57"},
            ],
        }
    }
    docs["health_flags"] = {
        GRAPH_ID: {
            "name": "pt2q health flags",
            "results": _results(
                [(r, float(len(r.flags))) for r in report.rows if r.health is not None]
            ),
            "thresholds": [
                {"value": 0, "bgColor": "#ffffff"},
                {"value": 2, "bgColor": "#ff7f0e"},
                {"value": 4, "bgColor": "#d62728"},
            ],
        }
    }
    return docs
