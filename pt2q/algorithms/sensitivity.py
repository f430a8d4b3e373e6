"""Mixed precision by measured sensitivity: the activations whose int8 costs the most stay float.

On a calibrated prepared model, each activation observer's input (a *candidate*: the edge convert
would quantize) is scored by the output metric on the calibration batches with only that
activation left float, all else int8 as convert makes it. Candidates are ranked by their gain
over the all-int8 score (on the first ``rank_batches`` batches: one forward each, the main
cost), then kept float greedily (judged on all batches) while each still lifts the score, measured
together with those already chosen, by at least ``min_gain`` of what keeping *every* candidate
float would recover, at most ``budget`` of the candidates, stopping after ``PATIENCE`` candidates
in a row that do not::

    prepared --convert(copy, once)--> q/dq program
    for c in candidates:  score(program with c's dequantize bypassed)   -> gain(c)
    for c in by gain:     keep c if score(kept + c) - score(kept) >= min_gain * (all float - int8)

The bypass reads ``x`` where ``x -> quantize -> dequantize -> user`` read the dequantize, which is
what convert emits once ``x``'s observer is gone (a switch module per candidate on each such
use: one compiled program serves every trial). The chosen observers are then removed from the
prepared graph (as ``keep_float`` does), and ``meta["pt2q"]["kept_float"]`` (carried to the
converted program) gives each name its reason and gain. The work is bounded by counts, so the
choice depends only on the data: ``max_candidates`` caps how many are scored (the most
outlier-dominated, ``range_vs_percentile``, first; ResNet-50 at batch 2: 24 forwards to rank, in
about 13 s on one thread); ``seconds`` (wall, off by default) can also cut it, two thirds of it
for ranking (then reported, and the result depends on the machine's speed).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.algorithms.batches import Batch, Metric, call, sqnr_metric
from pt2q.algorithms.capture import float_outputs
from pt2q.algorithms.keep_float import record_kept_float
from pt2q.convert.health_check import QuantizationHealthWarning
from pt2q.convert.qdq import observer_of
from pt2q.health import observer_health
from pt2q.qdq.ops import is_dequantize, is_quantize
from pt2q.quantize_pt2e import convert_pt2e

__all__ = [
    "PATIENCE",
    "SensitivityResult",
    "SensitivityOptions",
    "keep_sensitive_float",
    "sensitivity_search",
]

PATIENCE = 3  # candidates in a row that fail to lift the score end the choosing


@dataclass(frozen=True)
class SensitivityResult:
    """What ``keep_sensitive_float`` measured: the fit-batch score all int8, with every candidate
    float, with the chosen ones float; the gain of each scored candidate (the observed node
    names sharing one range) alone; whether the ``seconds`` budget cut the search short."""

    int8_score: float
    all_float_score: float
    score: float
    gains: dict[tuple[str, ...], float]
    kept: tuple[tuple[str, ...], ...]
    candidates: int
    timed_out: bool


def _candidates(gm: GraphModule) -> list[tuple[tuple[str, ...], float]]:
    """The candidates of ``gm`` in graph order: the observed node names of each calibrated
    static per-tensor activation observer, joined when they share an observer (a shared
    quantization spec: one range, so one decision), with their largest ``range_vs_percentile``."""
    group: dict[str, str] = {}  # observed node name -> name of its group's first node

    def root(name: str) -> str:
        while group[name] != name:
            name = group[name]
        return name

    first_of: dict[str, str] = {}  # observer module -> first observed node name
    ratio: dict[str, float] = {}
    for node in gm.graph.nodes:
        obs = observer_of(gm, node)
        src = node.args[0] if obs is not None else None
        if obs is None or not isinstance(src, Node):
            continue
        health = observer_health(obs)
        if health is None:
            continue
        group.setdefault(src.name, src.name)
        ratio[src.name] = max(ratio.get(src.name, 0.0), health.range_vs_percentile)
        other = first_of.setdefault(str(node.target), src.name)
        a, b = root(other), root(src.name)
        if a != b:
            group[b] = a
    members: dict[str, list[str]] = {}
    for name in group:
        members.setdefault(root(name), []).append(name)
    return [(tuple(m), max(ratio[n] for n in m)) for m in members.values()]


class _Switch(torch.nn.Module):
    """Routes one candidate's uses: its float value when ``on``, else its dequantized one."""

    def __init__(self) -> None:
        super().__init__()
        self.on = False

    def forward(self, x: torch.Tensor, dq: torch.Tensor) -> torch.Tensor:
        return x if self.on else dq


class _Bypass:
    """A converted copy of the prepared model whose chosen activations read float: for each
    candidate ``x``, the users of ``x -> quantize -> dequantize`` read ``x`` instead. Each use
    goes through the candidate's :class:`_Switch`, so choosing costs no recompilation."""

    def __init__(self, prepared: GraphModule, candidates: Sequence[tuple[str, ...]]):
        owner = {name: c for c in candidates for name in c}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", QuantizationHealthWarning)
            self.program = convert_pt2e(copy.deepcopy(prepared))
        graph = self.program.graph
        self.switches: dict[tuple[str, ...], _Switch] = {}
        names: dict[tuple[str, ...], str] = {}
        for q in list(graph.nodes):
            x = q.args[0] if is_quantize(q) else None
            if not isinstance(x, Node) or x.name not in owner:
                continue
            candidate = owner[x.name]
            if candidate not in names:
                names[candidate] = f"_pt2q_sensitivity_{len(names)}"
                self.switches[candidate] = _Switch()
                self.program.add_submodule(names[candidate], self.switches[candidate])
            for dq in [u for u in q.users if is_dequantize(u)]:
                for user in list(dq.users):
                    with graph.inserting_before(user):
                        use = graph.call_module(names[candidate], (x, dq))
                    user.replace_input_with(dq, use)
        self.program.recompile()

    def outputs(self, chosen: Sequence[tuple[str, ...]], batches: Sequence[Batch]) -> list[Any]:
        for candidate, switch in self.switches.items():
            switch.on = candidate in chosen
        return [call(self.program, b) for b in batches]


@dataclass(frozen=True)
class SensitivityOptions:
    """The search's bounds (see the module doc); invalid values raise ``ValueError`` naming
    the argument, unknown names ``TypeError``."""

    budget: float = 0.15
    min_gain: float = 0.02
    max_candidates: int = 24
    seconds: float | None = None
    rank_batches: int = 1

    def __post_init__(self) -> None:
        b, g, n, s, r = (
            self.budget,
            self.min_gain,
            self.max_candidates,
            self.seconds,
            self.rank_batches,
        )
        if not 0.0 < b <= 1.0:
            raise ValueError(f"sensitivity: budget must be a fraction in (0, 1], got {b!r}")
        if not 0.0 <= g < 1.0:
            raise ValueError(f"sensitivity: min_gain must be in [0, 1), got {g!r}")
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"sensitivity: max_candidates must be an int >= 1, got {n!r}")
        if s is not None and not s > 0.0:
            raise ValueError(f"sensitivity: seconds must be None or > 0, got {s!r}")
        if not isinstance(r, int) or r < 1:
            raise ValueError(f"sensitivity: rank_batches must be an int >= 1, got {r!r}")


def sensitivity_search(
    gm: GraphModule, batches: Sequence[Batch], metric: Metric | None = None, **options: Any
) -> SensitivityResult:
    """Score and choose (see the module doc) without changing ``gm``; ``options`` are
    :class:`SensitivityOptions` fields."""
    opts = SensitivityOptions(**options)
    budget, min_gain, seconds = opts.budget, opts.min_gain, opts.seconds
    max_candidates, rank_batches = opts.max_candidates, opts.rank_batches
    batches = list(batches)
    if not batches:
        raise ValueError("sensitivity: needs at least one calibration batch to score on")
    score_of = metric or sqnr_metric
    start = time.perf_counter()
    found = _candidates(gm)
    # most outlier-dominated first (stable: graph order among equals)
    order = sorted(range(len(found)), key=lambda i: -found[i][1])[:max_candidates]
    bypass = _Bypass(gm, [found[i][0] for i in order])
    scored = [found[i][0] for i in order if found[i][0] in bypass.switches]
    ref = float_outputs(gm, batches)

    def score(chosen: Sequence[tuple[str, ...]], n: int = len(batches)) -> float:
        return float(score_of(ref[:n], bypass.outputs(chosen, batches[:n]), batches[:n]))

    int8 = score([])
    all_float = score(scored)
    gap = all_float - int8
    rank_int8 = score([], rank_batches) if rank_batches < len(batches) else int8
    gains: dict[tuple[str, ...], float] = {}
    kept: list[tuple[str, ...]] = []
    current = int8
    timed_out = False
    if scored and gap > 0:
        for c in scored:  # ranking stops at 2/3 of the time, leaving the choice the rest
            if seconds is not None and time.perf_counter() - start > seconds * 2 / 3:
                timed_out = True
                break
            gains[c] = score([c], rank_batches) - rank_int8
        limit = max(1, math.floor(budget * len(found)))
        # all float exact (inf dB: every weight float too): no fraction of it to ask for
        margin = min_gain * gap if math.isfinite(gap) else 0.0
        misses = 0
        for c in sorted(gains, key=lambda k: -gains[k]):
            if len(kept) >= limit or gains[c] <= 0 or misses >= PATIENCE:
                break
            if seconds is not None and time.perf_counter() - start > seconds:
                timed_out = True
                break
            trial = score([*kept, c])
            if trial > current and trial - current >= margin:
                kept.append(c)
                current, misses = trial, 0
            else:
                misses += 1
    return SensitivityResult(int8, all_float, current, gains, tuple(kept), len(found), timed_out)


def keep_sensitive_float(
    gm: GraphModule, batches: Sequence[Batch], metric: Metric | None = None, **options: Any
) -> list[str]:
    """Keep float, in calibrated prepared ``gm`` (in place), the activations whose int8 costs
    the ``metric`` (default: output SQNR against ``gm``'s float graph) most on ``batches``;
    ``options`` (:class:`SensitivityOptions`): at most ``budget`` (a fraction) of the
    activation observers, each lifting the score by at least ``min_gain`` of what keeping them
    all float would; at most ``max_candidates`` scored, optionally within ``seconds``, ranked on
    the first ``rank_batches`` batches (chosen on all). Returns the names of the nodes whose
    output now stays float."""
    result = sensitivity_search(gm, batches, metric, **options)
    chosen = {name for candidate in result.kept for name in candidate}
    for node in list(gm.graph.nodes):
        obs = observer_of(gm, node)
        src = node.args[0] if obs is not None else None
        if obs is None or not isinstance(src, Node) or src.name not in chosen:
            continue
        if observer_health(obs) is None:  # not one the candidate was made of
            continue
        node.replace_all_uses_with(src)
        gm.graph.erase_node(node)
    cut = ", cut short by the seconds budget" if result.timed_out else ""
    for candidate in result.kept:
        for name in candidate:
            record_kept_float(
                gm,
                name,
                f"sensitivity: int8 here cost {result.gains[candidate]:.4g} of the metric on "
                f"the calibration batches ({result.int8_score:.4g} all int8, "
                f"{result.score:.4g} with {len(result.kept)} kept float; {len(result.gains)} of "
                f"{result.candidates} activations scored{cut})",
            )
    gm.graph.lint()
    gm.recompile()
    return [name for candidate in result.kept for name in candidate]
