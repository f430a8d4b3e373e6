"""Mixed precision to a target: the fewest ops left float for the output metric to reach it.

``sensitivity`` keeps a budget of *activations* float, each chosen for what it recovers alone.
Some models do not fail at a few activations: a network that amplifies every perturbation on the
way to its output (a random-weight MobileNetV2 with calibrated BN: 60 dB input noise comes out at
23 dB) loses its accuracy to the sum of all the early layers' rounding, weights and activations
alike, and no single activation kept float moves it. What recovers it is leaving whole ops float,
the ones whose int8 form costs the output most, as many as a stated ``target`` needs (AIMET's
automatic mixed precision does this with an allowed accuracy drop)::

    units = ops of the calibrated prepared graph that read an observer (their weight and
            activation inputs: what convert turns into dq -> op)
    rank:   score(only this unit int8, every other observer removed)    one convert per unit
    choose: the largest k with score(the k best-ranked units int8) >= target   bisection

An observer stays when every op reading it stays int8 (a float op reads float inputs). At most
``budget`` of the units go float; if the target needs more, the budget's worth is kept and the
result says the target was not reached. The chosen ops' observers are removed from the prepared
graph, and each op's reason (with the share of the conv / linear multiply-accumulates left
float) goes to ``meta["pt2q"]["kept_float_ops"]``, which convert carries to the converted program
(the coverage report and the x86 lowering report quote it).
Scores come from real conversions on the given batches, so gptq / adaround integers count; the
work is one convert and forward per unit plus about log2(units) more, so the choice depends only
on the data.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.fx import GraphModule, Node

from pt2q.algorithms.batches import Batch, Metric, call, sqnr_metric
from pt2q.algorithms.capture import float_outputs, strip_observers
from pt2q.algorithms.keep_float import record_kept_float
from pt2q.algorithms.params import WEIGHTED, get_param
from pt2q.convert.health_check import QuantizationHealthWarning
from pt2q.convert.qdq import observer_of
from pt2q.quantize_pt2e import convert_pt2e

__all__ = ["MixedPrecisionResult", "keep_float_to_target", "mixed_precision_search"]


@dataclass(frozen=True)
class MixedPrecisionResult:
    """What the search measured on the batches: the score all int8, each unit's score alone
    int8, the units left float (op names, most costly first), the score reached, and the share
    of conv / linear multiply-accumulates they hold (None when the graph gives no shapes)."""

    target: float
    int8_score: float
    alone: dict[str, float]
    kept_float: tuple[str, ...]
    score: float
    reached: bool
    float_mac_share: float | None


def _readers(gm: GraphModule, obs: Node) -> set[str]:
    """The ops (not observers, not the output) that read observer node ``obs``, through any
    observer chained after it."""
    out: set[str] = set()
    for user in obs.users:
        if observer_of(gm, user) is not None:
            out |= _readers(gm, user)
        elif user.op == "call_function":
            out.add(user.name)
    return out


def _macs(gm: GraphModule, node: Node) -> int | None:
    """Multiply-accumulates of a conv / linear node (from its output and weight shapes), 0 for
    other ops, None when the shapes are not known."""
    if node.target not in WEIGHTED:
        return 0
    out, w = node.meta.get("val"), node.args[1]
    while isinstance(w, Node) and observer_of(gm, w) is not None:
        w = w.args[0]
    if not isinstance(out, torch.Tensor) or not isinstance(w, Node) or w.op != "get_attr":
        return None
    return int(out.numel()) * int(get_param(gm, w)[0].numel())


def mixed_precision_search(
    gm: GraphModule,
    batches: Sequence[Batch],
    target: float,
    metric: Metric | None = None,
    budget: float = 0.5,
) -> MixedPrecisionResult:
    """Rank and choose (see the module doc) without changing calibrated prepared ``gm``."""
    if not 0.0 < budget <= 1.0:
        raise ValueError(f"mixed_precision: budget must be a fraction in (0, 1], got {budget!r}")
    if not math.isfinite(target):
        raise ValueError(f"mixed_precision: target must be a finite score, got {target!r}")
    batches = list(batches)
    if not batches:
        raise ValueError("mixed_precision: needs at least one calibration batch to score on")
    score_of = metric or sqnr_metric
    observers = [n for n in gm.graph.nodes if observer_of(gm, n) is not None]
    readers = {o.name: _readers(gm, o) for o in observers}
    units = [n.name for n in gm.graph.nodes if any(n.name in r for r in readers.values())]
    ref = float_outputs(gm, batches)

    shared: dict[int, object] = {id(t): t for t in (*gm.parameters(), *gm.buffers())}

    def score(keep: set[str]) -> float:
        # a copy of the graph and modules; the float tensors are shared (convert only reads them)
        model = copy.deepcopy(gm, dict(shared))
        strip_observers(model, lambda node: node.name not in keep)
        model.recompile()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", QuantizationHealthWarning)
            converted = convert_pt2e(model)
        return float(score_of(ref, [call(converted, b) for b in batches], batches))

    def keep_for(int8_units: set[str]) -> set[str]:  # observers every reader of which is int8
        return {o for o, r in readers.items() if r <= int8_units}

    int8 = score(keep_for(set(units)))
    alone: dict[str, float] = {}
    if int8 >= target or not units:  # nothing to do, or nothing quantized to leave float
        return MixedPrecisionResult(target, int8, alone, (), int8, int8 >= target, 0.0)
    for u in units:
        alone[u] = score({o for o, r in readers.items() if u in r})
    ranked = sorted(units, key=lambda u: -alone[u])  # cheapest int8 first (stable: graph order)
    floor = len(units) - max(1, math.floor(budget * len(units)))  # fewest units kept int8
    scores = {len(units): int8}

    def score_k(k: int) -> float:
        if k not in scores:
            scores[k] = score(keep_for(set(ranked[:k])))
        return scores[k]

    lo, hi = floor, len(units)  # score_k(hi) < target; find the largest k that reaches it
    if score_k(lo) >= target:
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if score_k(mid) >= target else (lo, mid)
    kept_float = tuple(ranked[lo:][::-1])
    nodes = {n.name: n for n in gm.graph.nodes}
    macs = [_macs(gm, nodes[u]) for u in units]
    share = None
    if all(m is not None for m in macs) and sum(m or 0 for m in macs) > 0:
        total = sum(m or 0 for m in macs)
        share = sum(m or 0 for u, m in zip(units, macs, strict=True) if u in kept_float) / total
    reached = score_k(lo) >= target
    return MixedPrecisionResult(target, int8, alone, kept_float, score_k(lo), reached, share)


def _leave_float(gm: GraphModule, float_ops: set[str]) -> dict[str, set[str]]:
    """Remove from ``gm`` every observer an op of ``float_ops`` reads. Returns, for each observed
    node whose observer int8 ops read as well (they now read its float value), those float ops."""
    readers = {n: _readers(gm, n) for n in gm.graph.nodes if observer_of(gm, n) is not None}
    going = {n.name for n, r in readers.items() if r & float_ops}
    shared = {
        n.args[0].name: r & float_ops
        for n, r in readers.items()
        if n.name in going and r - float_ops and isinstance(n.args[0], Node)
    }
    strip_observers(gm, lambda node: node.name in going)
    return shared


def keep_float_to_target(
    gm: GraphModule,
    batches: Sequence[Batch],
    target: float,
    metric: Metric | None = None,
    budget: float = 0.5,
) -> list[str]:
    """Leave float, in calibrated prepared ``gm`` (in place), the fewest ops whose int8 form
    costs the ``metric`` (default: output SQNR against ``gm``'s float graph, dB) most, so that
    it reaches ``target`` on ``batches``; at most ``budget`` (a fraction) of the quantized ops.
    Returns the names of the ops now float (none when the all-int8 program reaches it)."""
    result = mixed_precision_search(gm, batches, target, metric, budget)
    if not result.kept_float:
        return []
    shared = _leave_float(gm, set(result.kept_float))
    share = (
        ""
        if result.float_mac_share is None
        else (f", {100 * result.float_mac_share:.0f}% of the conv / linear MACs")
    )
    outcome = "reached" if result.reached else "NOT reached within the budget"
    for name in result.kept_float:
        record_kept_float(
            gm,
            name,
            f"mixed_precision: target {result.target:.4g} {outcome} with {len(result.kept_float)} "
            f"of {len(result.alone)} quantized ops float{share} ({result.int8_score:.4g} all int8 "
            f"-> {result.score:.4g}); this op alone int8 scored {result.alone[name]:.4g}",
            op=True,
        )
    for src, readers in shared.items():
        record_kept_float(
            gm,
            src,
            f"mixed_precision: read also by {', '.join(sorted(readers))}, left to compute in "
            "float (one observer per value: its int8 readers read it float too)",
        )
    gm.graph.lint()
    gm.recompile()
    return list(result.kept_float)
