"""pt2q.debugger: numeric debugger for quantized ``torch.export`` programs.

torchao-compatible entry points (``generate_numeric_debug_handle``,
``prepare_for_propagation_comparison``, ``extract_results_from_loggers``, ``compare_results``)
with stable structural handles and fusion-aware groups, plus ``debug_numerics`` (accumulated,
isolated and lowered columns, per-channel weight SQNR, text/JSON/HTML reports),
``rank_sensitivity``, ``auto_fallback`` and the ``pt2q debug`` CLI. See debugger/README.md.
"""

from pt2q.debugger.compare import (
    ComparisonResults,
    NodeAccuracySummary,
    NoMatchingHandlesError,
    QuantizationComparisonResult,
    compare_results,
)
from pt2q.debugger.debug import debug_numerics
from pt2q.debugger.fallback import FallbackResult, auto_fallback
from pt2q.debugger.handles import (
    CUSTOM_KEY,
    NUMERIC_DEBUG_HANDLE_KEY,
    generate_numeric_debug_handle,
    get_handle,
)
from pt2q.debugger.loggers import (
    OutputLogger,
    extract_results_from_loggers,
    prepare_for_propagation_comparison,
)
from pt2q.debugger.metrics import METRICS, Metric, compute_metric, register_metric
from pt2q.debugger.provenance import FROM_NODE_KEY, NodeSourceDebugInfo
from pt2q.debugger.report import DebugReport, LayerRow
from pt2q.debugger.sensitivity import SensitivityRow, rank_sensitivity

__all__ = [
    "CUSTOM_KEY",
    "NUMERIC_DEBUG_HANDLE_KEY",
    "ComparisonResults",
    "DebugReport",
    "FROM_NODE_KEY",
    "NodeSourceDebugInfo",
    "FallbackResult",
    "LayerRow",
    "METRICS",
    "Metric",
    "NoMatchingHandlesError",
    "NodeAccuracySummary",
    "OutputLogger",
    "QuantizationComparisonResult",
    "SensitivityRow",
    "auto_fallback",
    "compare_results",
    "compute_metric",
    "debug_numerics",
    "extract_results_from_loggers",
    "generate_numeric_debug_handle",
    "get_handle",
    "prepare_for_propagation_comparison",
    "rank_sensitivity",
    "register_metric",
]
