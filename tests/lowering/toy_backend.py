"""A toy third backend built only from pt2q's public pieces, the way ``lowering/README.md`` says:

1. a quantizer: the XNNPACK one, reused (int8 symmetric per-channel weights);
2. kernels: ``torch.ops.pt2q_toy.qlinear`` (int32 GEMM + fp32 requantization, in Python);
3. a pattern table on the ``pt2q.qdq`` engine, each entry packing its weights in the rewrite;
4. a lowering function with the common contract and a ``LoweringReport``.

Nothing under ``pt2q/`` knows this backend exists.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Sequence

import torch
from torch.fx import GraphModule

from pt2q.qdq import (
    LoweringReport,
    LoweringStatus,
    NodeDecision,
    NoMatch,
    Pattern,
    Rewrite,
    attach_report,
    get_handle,
    is_qdq,
    rewrite,
    searches,
)
from pt2q.qdq.engine import Value
from pt2q.quantizers import XNNPACKQuantizer, get_symmetric_quantization_config

__all__ = ["toy_quantizer", "lower_to_toy", "TOY_PATTERNS"]


def toy_quantizer() -> XNNPACKQuantizer:
    """Step 1: the toy chip takes XNNPACK's int8 scheme, so its quantizer is XNNPACK's."""
    return XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))


# ---------------------------------------------------------------- step 2: "kernels"
@torch.library.custom_op("pt2q_toy::qlinear", mutates_args=())
def qlinear(
    x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor, scale: torch.Tensor,
    zp: int, qmin: int, qmax: int,
) -> torch.Tensor:  # fmt: skip
    """int8 x (..., K) times int8 w (N, K) + int32 bias (input zero point folded in), requantized
    with fp32 ``scale`` (N,): ``clamp(round(acc * scale) + zp, qmin, qmax)``."""
    acc = x.to(torch.int64) @ w.to(torch.int64).t() + bias.to(torch.int64)
    y = torch.round(acc.to(torch.float32) * scale) + zp
    return y.clamp(qmin, qmax).to(torch.int8)


@qlinear.register_fake
def _(x, w, bias, scale, zp, qmin, qmax):
    return x.new_empty((*x.shape[:-1], w.shape[0]))


# ---------------------------------------------------------------- step 3: the pattern table
def _linear(r: Rewrite) -> Value:
    """dq x, dq w -> linear [-> relu] -> q  ==>  pt2q_toy.qlinear (weights packed here)."""
    if r["xdt"] != torch.int8 or r["odt"] != torch.int8:
        raise NoMatch(f"{r.match.anchor.name}: the toy chip computes int8 only")
    w = r.tensor("w")
    w_scale = r.tensor("ws").double() if r["axis"] == 0 else None
    if w_scale is None:
        raise NoMatch(f"{r.match.anchor.name}: per-channel weights on axis 0 expected")
    acc_scale = float(r["xs"]) * w_scale
    b = r.tensor("b").double() if r.node("b") is not None else torch.zeros_like(acc_scale)
    bias = torch.round(b / acc_scale) - int(r["xz"]) * w.to(torch.int64).sum(dim=1).double()
    zp, qmin = int(r["oz"]), int(r["olo"])
    if r.match.post_ops:  # a fused relu clamps at the output zero point
        qmin = max(qmin, zp)
    r.kernel = "toy.qlinear"
    return torch.ops.pt2q_toy.qlinear.default(
        r["x"],
        r.constant("_toy_w", w.clone()),
        r.constant("_toy_bias", bias.to(torch.int32)),
        r.constant("_toy_scale", (acc_scale / float(r["os"])).float()),
        zp, qmin, int(r["ohi"]),
    )  # fmt: skip


TOY_PATTERNS: list[Pattern] = [
    Pattern("linear_relu", searches.weighted("linear", per_channel=True, relu=True), _linear),
    Pattern("linear", searches.weighted("linear", per_channel=True, relu=False), _linear),
]


# ---------------------------------------------------------------- step 4: the lowering
def lower_to_toy(model: GraphModule, example_inputs: Sequence[torch.Tensor]) -> GraphModule:
    """The common contract: a copy is rewritten, a GraphModule comes back with its report."""
    gm = copy.deepcopy(model)
    calls = [n for n in gm.graph.nodes if n.op == "call_function" and n.target != operator.getitem]
    seen = [(n.name, str(n.target), get_handle(n), is_qdq(n)) for n in calls]
    decided: dict[str, NodeDecision] = {}
    for pattern in TOY_PATTERNS:
        for match, _new, kernel in rewrite(gm, pattern).rewritten:
            for node in match.nodes:
                lowered = node is match.anchor
                decided[node.name] = NodeDecision(
                    node.name,
                    str(node.target),
                    get_handle(node),
                    LoweringStatus.LOWERED if lowered else LoweringStatus.FUSED,
                    kernel if lowered else match.anchor.name,
                )
    gm.graph.eliminate_dead_code()
    gm.recompile()
    report = LoweringReport("toy")
    for name, op, handle, qdq in seen:
        if name in decided:
            report.decisions.append(decided[name])
        else:
            status = LoweringStatus.REFERENCE if qdq else LoweringStatus.FLOAT
            why = "the toy chip has a kernel for linear only"
            report.decisions.append(NodeDecision(name, op, handle, status, reason=why))
    attach_report(gm, report)
    with torch.no_grad():
        gm(*example_inputs)
    return gm
