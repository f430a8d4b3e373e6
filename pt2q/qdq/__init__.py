"""The one vocabulary for reading and rewriting the quantized_decomposed reference program.

* ``pt2q.qdq.ops``: which ops are quantize / dequantize / choose_qparams;
* ``pt2q.qdq.meta``: every meta key pt2q writes (annotations, debug handles, int8 outputs);
* ``pt2q.qdq.engine``: traced search / replace pattern tables with literal-argument capture;
* ``pt2q.qdq.views``: typed views ``ActQ`` / ``WeightQ`` / ``OutQ`` / ``TokenQ`` / ``QuantizedOp``;
* ``pt2q.qdq.decision``: ``NodeDecision`` / ``LoweringReport``, what a lowering did per node.

Everything here depends on torch only, never on the rest of pt2q.
"""

from pt2q.qdq.decision import (
    REPORT_ATTR,
    LoweringReport,
    LoweringStatus,
    NodeDecision,
    attach_report,
    read_report,
)
from pt2q.qdq.engine import (
    Match,
    NoMatch,
    Pattern,
    Rewrite,
    RewriteResult,
    constant_value,
    find_matches,
    keyword_replace,
    rewrite,
)
from pt2q.qdq.meta import get_handle, get_quantized_output, set_handle, set_quantized_output
from pt2q.qdq.ops import is_choose_qparams, is_compute, is_dequantize, is_qdq, is_quantize
from pt2q.qdq.views import (
    ActQ,
    OutQ,
    QuantizedOp,
    TokenQ,
    WeightQ,
    act_q,
    out_q,
    quantized_op,
    token_q,
    weight_q,
)

__all__ = [
    "REPORT_ATTR",
    "LoweringReport",
    "LoweringStatus",
    "NodeDecision",
    "attach_report",
    "read_report",
    "Match",
    "NoMatch",
    "Pattern",
    "Rewrite",
    "RewriteResult",
    "constant_value",
    "find_matches",
    "keyword_replace",
    "rewrite",
    "get_handle",
    "set_handle",
    "get_quantized_output",
    "set_quantized_output",
    "is_qdq",
    "is_quantize",
    "is_dequantize",
    "is_choose_qparams",
    "is_compute",
    "ActQ",
    "WeightQ",
    "OutQ",
    "TokenQ",
    "QuantizedOp",
    "act_q",
    "weight_q",
    "out_q",
    "token_q",
    "quantized_op",
]
