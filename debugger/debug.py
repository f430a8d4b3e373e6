"""``debug_numerics``: compare a float program with its quantized (and lowered) versions.

    report = debug_numerics(float_ep, quant_gm, batches, lowered=lowered_gm)
    print(report.to_text())               # root causes first, then the table
    report.root_causes(k=5)               # the report's rows most likely to cause the error

Stages are ``float`` (the exported program), ``quant`` (the reference program from convert_pt2e,
no handle step needed: handles come from ``from_node`` provenance unless both carry structural
ones) and optionally ``lowered`` (any module: a GraphModule that kept the handles is compared per
group, anything else, e.g. an Inductor-compiled callable, only at the output). Columns:

    float~quant           accumulated error: each graph runs on its own values
    float~quant:isolated  each quantized group fed the float model's values at its boundary
                          (its producers' outputs), so errors do not accumulate
    float~quant:through   the isolated value carried through float ops to the group's first
                          non-linear consumer (``consumer``): where a mask-add's error shows
    quant~lowered         the kernel's error alone: a wrong kernel shows only here
    float~lowered         what the user finally gets

Rows: one per matched group producing a tensor, in model order; pass-through groups are folded
into their producer (``passthrough=True`` keeps them). Each row carries its root-cause score
(``rootcause``), health of its output quantization (``health_columns``) and, with a lowered
program that has a ``LoweringReport``, what the lowering made of it. Batches stream: each is run
through every stage, folded into the metric states and dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch.export import ExportedProgram
from torch.fx import GraphModule, Node
from torch.utils._pytree import tree_leaves

from pt2q.debugger.consumer import ConsumerPath, consumer_paths, path_hooks
from pt2q.debugger.execute import (
    GroupProgram,
    build_group_programs,
    constant_values,
    mixed_run,
    record_run,
)
from pt2q.debugger.groups import GraphGroups
from pt2q.debugger.handles import get_handle, module_path, source_line
from pt2q.debugger.health_columns import OutputHealth, output_health
from pt2q.debugger.matching import (
    Matching,
    as_batches,
    as_graph_module,
    match_programs,
    reported_handles,
)
from pt2q.debugger.metrics import DEFAULT_METRICS, get_metric, update_many
from pt2q.debugger.provenance import (
    node_source_debug_info,
    with_handles,
)
from pt2q.debugger.report import DebugReport, LayerRow
from pt2q.debugger.rootcause import RankInput, rank
from pt2q.debugger.weights import weight_sqnr_per_channel
from pt2q.qdq.decision import read_report

__all__ = ["debug_numerics"]

FQ, FQ_ISO, QL, FL = "float~quant", "float~quant:isolated", "quant~lowered", "float~lowered"
FQ_THROUGH = "float~quant:through"


class _Acc:
    """Streaming metric states per (key, column)."""

    def __init__(self, metrics: Sequence[str]) -> None:
        self.metrics = [get_metric(m) for m in metrics]
        self.states: dict[Any, dict[str, list[dict[str, float]]]] = {}
        self.compared: dict[Any, bool] = {}

    def update(self, key: Any, column: str, ref: Any, actual: Any) -> None:
        per_key = self.states.setdefault(key, {})
        states = per_key.setdefault(column, [m.init() for m in self.metrics])
        refs = [t for t in tree_leaves(ref) if isinstance(t, torch.Tensor)]
        acts = [t for t in tree_leaves(actual) if isinstance(t, torch.Tensor)]
        if refs:
            self.compared[key] = True
        if len(refs) != len(acts):
            raise ValueError(
                f"{column} at {key}: {len(refs)} reference tensors vs {len(acts)} actual tensors"
            )
        for r, a in zip(refs, acts, strict=True):
            update_many(self.metrics, states, r, a)

    def result(self, key: Any) -> dict[str, dict[str, float]]:
        return {
            column: {m.name: m.finalize(s) for m, s in zip(self.metrics, states, strict=True)}
            for column, states in self.states.get(key, {}).items()
        }


def debug_numerics(
    float_model: ExportedProgram | GraphModule,
    quant_model: ExportedProgram | GraphModule,
    inputs: Iterable[Any],
    *,
    lowered: Callable[..., Any] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    isolated: bool = True,
    weights: bool = True,
    passthrough: bool = False,
    health: bool = True,
) -> DebugReport:
    """Compare ``float_model`` with ``quant_model`` (and ``lowered``) over ``inputs`` batches.

    ``quant_model`` must come from ``float_model`` through prepare/convert: handles are the
    structural ones of ``generate_numeric_debug_handle`` when both carry them (needed across
    save/load or re-export), else derived from ``from_node`` provenance. Raises
    ``NoMatchingHandlesError`` when no group matches. ``passthrough`` gives view/reshape/...
    groups rows of their own; ``health`` adds ``pt2q.health`` columns for each quantized
    output (first batch). See the module docstring for the columns.

    Cost model, per batch: one recorded run of the float graph, one of the quantized graph,
    with ``isolated`` one more run of the float graph during which every quantized group is
    evaluated once on the float values at its boundary (together about one quantized run) plus
    the few float ops up to each group's first non-linear consumer; with ``lowered`` one run of
    it. So about 4 model runs through ``torch.fx.Interpreter`` (about 20 us of Python per
    node) plus five float64 reductions (BLAS dots, one max) per group and column for all the
    metrics together. Values computed from
    constants only (dequantized weights) are evaluated once per call, the per-channel weight
    SQNR once per weight, vectorised. Memory: the float values of every reported group for one
    batch (copies where the graph has in-place ops). Wall time is about the CPU time with one
    intra-op thread; on an oversubscribed machine more threads mostly spin.
    """
    float_gm = as_graph_module(float_model, "debug_numerics(float_model)")
    quant_gm = as_graph_module(quant_model, "debug_numerics(quant_model)")
    match = match_programs(float_gm, quant_gm)
    handles, folded = reported_handles(match, passthrough)
    session = _Session(match, handles, metrics, isolated, lowered)
    n = 0
    for args in as_batches(inputs):
        n += 1
        session.batch(args, health=health and n == 1)
    acc, paths, programs = session.acc, session.paths, session.programs
    columns = [FQ] + ([FQ_ISO, FQ_THROUGH] if isolated else [])
    if lowered is not None:
        columns += [QL, FL]
    if n == 0:
        raise ValueError("debug_numerics: inputs gave no batch")
    rows = [
        _row(
            match,
            h,
            acc.result(h),
            folded.get(h, []),
            weights,
            paths,
            session.health.get(h),
            session.consts_q,
        )
        for h in handles
        if acc.result(h).get(FQ, {}).get(metrics[0]) is not None and _has_tensor(acc, h)
    ]
    _rank(rows, programs, paths)
    if lowered is not None:
        _lowered_as(rows, lowered)
    return DebugReport(
        columns=columns,
        metrics=list(metrics),
        rows=rows,
        output=acc.result("output"),
        unmatched_ref=match.unmatched_ref,
        unmatched_actual=match.unmatched_actual,
        num_batches=n,
    )


class _Session:
    """What one ``debug_numerics`` call reuses across batches, and the per-batch runs."""

    def __init__(
        self,
        match: Matching,
        handles: list[int],
        metrics: Sequence[str],
        isolated: bool,
        lowered: Callable[..., Any] | None,
    ) -> None:
        self.fg, self.qg = match.float_groups, match.quant_groups
        self.handles = handles
        self.isolated = isolated
        self.lowered = lowered
        self.low_groups: GraphGroups | None = None
        self.low_handles: list[int] = []
        if isinstance(lowered, GraphModule):
            low_gm, _ = with_handles(lowered, match.structural)
            self.low_groups = GraphGroups.build(low_gm)
            self.low_handles = [h for h in handles if h in self.low_groups.rep]
        self.consts_f = constant_values(self.fg.gm)
        self.consts_q = constant_values(self.qg.gm)
        self.consts_l = constant_values(self.low_groups.gm) if self.low_groups else {}
        self.programs = build_group_programs(self.qg, handles)
        self.paths = consumer_paths(self.fg, handles) if isolated else {}
        self.acc = _Acc(metrics)
        self.health: dict[int, OutputHealth] = {}
        self.f_vals: dict[int, Any] = {}
        self.q_vals: dict[int, Any] = {}
        self.donor_vals: dict[int, Any] = {}

    def _on_quant(self, h: int, value: Any) -> None:
        self.acc.update(h, FQ, self.f_vals[h], value)
        if self.lowered is not None:
            self.q_vals[h] = value

    def _on_iso(self, h: int, value: Any) -> None:
        self.acc.update(h, FQ_ISO, self.f_vals[h], value)
        if h in self.paths:
            self.donor_vals[h] = value

    def _on_through(self, h: int, ref: Any, value: Any) -> None:
        self.acc.update(h, FQ_THROUGH, ref, value)

    def batch(self, args: tuple[Any, ...], health: bool) -> None:
        """Run one batch through every stage and fold it into the metric states."""
        fg, qg, acc, handles = self.fg, self.qg, self.acc, self.handles
        f_out, self.f_vals = record_run(fg.gm, fg, args, handles, self.consts_f)
        self.q_vals = {}
        q_out, _ = record_run(qg.gm, qg, args, handles, self.consts_q, self._on_quant)
        acc.update("output", FQ, f_out, q_out)
        if health:
            self.health = output_health(qg, handles, self.f_vals)
        if self.isolated:
            self.donor_vals = {}
            hooks = path_hooks(self.paths, fg.gm, self.consts_f, self.donor_vals, self._on_through)
            mixed_run(
                fg.gm,
                fg,
                args,
                handles,
                self.programs,
                False,
                self.consts_f,
                self.consts_q,
                self._on_iso,
                hooks,
            )
        if self.lowered is not None:
            if self.low_groups is not None:
                lg = self.low_groups
                l_out, l_vals = record_run(lg.gm, lg, args, self.low_handles, self.consts_l)
                for h in self.low_handles:
                    if not _all_float(l_vals[h]):
                        continue  # an integer output without declared qparams: not comparable
                    acc.update(h, QL, self.q_vals[h], l_vals[h])
                    acc.update(h, FL, self.f_vals[h], l_vals[h])
            else:
                with torch.no_grad():
                    l_out = self.lowered(*args)
            acc.update("output", QL, q_out, l_out)
            acc.update("output", FL, f_out, l_out)
        self.f_vals, self.q_vals = {}, {}


def _all_float(value: Any) -> bool:
    """Whether every tensor in ``value`` is floating point."""
    return all(t.is_floating_point() for t in tree_leaves(value) if isinstance(t, torch.Tensor))


def _has_tensor(acc: _Acc, h: int) -> bool:
    return acc.compared.get(h, False)


def _row(
    match: Matching,
    h: int,
    metrics: dict[str, dict[str, float]],
    folded: list[str],
    weights: bool,
    paths: dict[int, ConsumerPath],
    health: Any,
    consts: dict[Node, Any],
) -> LayerRow:
    fg, qg = match.float_groups, match.quant_groups
    qn, fn = qg.rep[h], fg.rep[h]
    info = match.infos.get(h) or node_source_debug_info(fn)
    return LayerRow(
        handle=h,
        module_path=module_path(fn),
        source=source_line(fn),
        op=str(getattr(fn.target, "__name__", fn.target)),
        ref_node=fg.out[h].name if get_handle(fg.out[h]) is not None else fn.name,
        actual_node=qn.name,
        absorbed=list(fg.absorbed.get(h, [])),
        metrics=metrics,
        weight_sqnr_per_channel=weight_sqnr_per_channel(fg, qg, h, consts) if weights else None,
        ep_node=info.name if info is not None else fn.name,
        absorbed_nodes=_absorbed_names(fg, fg.absorbed.get(h, [])),
        folded=folded,
        consumer=paths[h].target.name if h in paths else "",
        health=None if health is None else health.values,
        flags=[] if health is None else list(health.flags),
    )


def _absorbed_names(fg: GraphGroups, absorbed: list[int]) -> list[str]:
    """Float program node names of the ``absorbed`` handles (their last compute node each)."""
    if not absorbed:
        return []
    names: dict[int, str] = {}
    for node in fg.gm.graph.nodes:
        h = get_handle(node)
        if h in absorbed and node.op == "call_function":
            info = node_source_debug_info(node)
            names[h] = info.name if info is not None else node.name
    return [names[h] for h in absorbed if h in names]


def _rank(
    rows: list[LayerRow],
    programs: dict[int, GroupProgram],
    paths: dict[int, ConsumerPath],
) -> None:
    consumer_of: dict[int, list[int]] = {}
    for h, p in paths.items():
        target = get_handle(p.target)
        if target is not None:
            consumer_of.setdefault(target, []).append(h)
    inputs = [
        RankInput(
            r.handle,
            {c: v.get("sqnr", math.nan) for c, v in r.metrics.items()},
            sorted(set(programs[r.handle].boundary.values())),
            consumer_of.get(r.handle, []),
            r.consumer,
        )
        for r in rows
    ]
    ranked = rank(inputs)
    for r in rows:
        r.score, r.why = ranked[r.handle]


def _lowered_as(rows: list[LayerRow], lowered: Callable[..., Any]) -> None:
    """Fill ``lowered_as`` from the lowering's report (by node name, then by handle)."""
    try:
        report = read_report(lowered)
    except TypeError:
        return
    by_node, by_handle = report.by_node(), report.by_handle()
    for r in rows:
        d = by_node.get(r.actual_node) or by_handle.get(r.handle)
        if d is not None:
            what = d.kernel if d.status.value in ("lowered", "fused") else d.reason
            r.lowered_as = f"{d.status.value}: {what}" if what else d.status.value
