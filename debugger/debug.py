"""``debug_numerics``: compare a float program with its quantized (and lowered) versions.

    report = debug_numerics(float_ep, quant_gm, batches, lowered=lowered_gm)
    print(report.to_text())

Stages are ``float`` (carries the handles), ``quant`` (the reference program from convert_pt2e)
and optionally ``lowered`` (any module: a GraphModule that kept the handles is compared per
group, anything else, e.g. an Inductor-compiled callable, only at the output). Columns:

    float~quant           accumulated error: each graph runs on its own values
    float~quant:isolated  each quantized group fed the float model's values at its boundary
                          (its producers' outputs), so errors do not accumulate
    quant~lowered         the kernel's error alone: a wrong kernel shows only here
    float~lowered         what the user finally gets

Batches stream: each is run through every stage, folded into the metric states and dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.export import ExportedProgram
from torch.fx import GraphModule
from torch.utils._pytree import tree_leaves

from pt2q.debugger.compare import NoMatchingHandlesError
from pt2q.debugger.execute import build_group_programs, mixed_run, record_run
from pt2q.debugger.groups import GraphGroups
from pt2q.debugger.handles import get_handle, module_path, source_line
from pt2q.debugger.metrics import DEFAULT_METRICS, get_metric
from pt2q.debugger.report import DebugReport, LayerRow, UnmatchedNode
from pt2q.debugger.weights import weight_sqnr_per_channel

__all__ = ["debug_numerics", "Matching", "match_programs", "as_graph_module", "as_batches"]

FQ, FQ_ISO, QL, FL = "float~quant", "float~quant:isolated", "quant~lowered", "float~lowered"


def as_graph_module(model: ExportedProgram | GraphModule, what: str) -> GraphModule:
    """``model`` as a GraphModule (``ep.module()`` for an ExportedProgram)."""
    if isinstance(model, ExportedProgram):
        return model.module()  # type: ignore[return-value]
    if isinstance(model, GraphModule):
        return model
    raise TypeError(
        f"{what}: expected an ExportedProgram or GraphModule, got {type(model).__name__}"
    )


def as_batches(inputs: Iterable[Any]) -> Iterable[tuple[Any, ...]]:
    """Each batch as a tuple of positional args (a bare tensor becomes a 1-tuple)."""
    for batch in inputs:
        yield tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)


@dataclass
class Matching:
    """Groups of the float and quantized graphs and which handles match."""

    float_groups: GraphGroups
    quant_groups: GraphGroups
    matched: list[int]
    unmatched_ref: list[UnmatchedNode]
    unmatched_actual: list[UnmatchedNode]


def _unmatched(groups: GraphGroups, handles: Iterable[int]) -> list[UnmatchedNode]:
    out = []
    for h in handles:
        node = groups.rep[h]
        out.append(UnmatchedNode(h, node.name, module_path(node)))
    return out


def match_programs(float_gm: GraphModule, quant_gm: GraphModule) -> Matching:
    """Match handles of two graphs; raise when the float graph has none or nothing matches."""
    quant_all = GraphGroups.build(quant_gm)
    float_all = GraphGroups.build(float_gm)
    if not float_all.rep:
        raise ValueError(
            "debug_numerics: the float program carries no numeric debug handle; call "
            "generate_numeric_debug_handle(ep) on it before quantizing"
        )
    float_groups = GraphGroups.build(float_gm, keep=quant_all.rep)
    matched = [h for h in float_groups.rep if h in quant_all.rep]
    if not matched:
        raise NoMatchingHandlesError(
            f"debug_numerics: none of the {len(float_all.rep)} float handles appears among the "
            f"{len(quant_all.rep)} handles of the quantized program; was the quantized program "
            "prepared from the float program after generate_numeric_debug_handle?"
        )
    folded = {h for hs in float_groups.absorbed.values() for h in hs}
    unmatched_ref = [h for h in float_all.rep if h not in quant_all.rep and h not in folded]
    unmatched_actual = [h for h in quant_all.rep if h not in float_all.rep]
    return Matching(
        float_groups,
        quant_all,
        matched,
        _unmatched(float_all, unmatched_ref),
        _unmatched(quant_all, unmatched_actual),
    )


class _Acc:
    """Streaming metric states per (key, column)."""

    def __init__(self, metrics: Sequence[str]) -> None:
        self.metrics = [get_metric(m) for m in metrics]
        self.states: dict[Any, dict[str, list[dict[str, float]]]] = {}

    def update(self, key: Any, column: str, ref: Any, actual: Any) -> None:
        per_key = self.states.setdefault(key, {})
        states = per_key.setdefault(column, [m.init() for m in self.metrics])
        refs = [t for t in tree_leaves(ref) if isinstance(t, torch.Tensor)]
        acts = [t for t in tree_leaves(actual) if isinstance(t, torch.Tensor)]
        if len(refs) != len(acts):
            raise ValueError(
                f"{column} at {key}: {len(refs)} reference tensors vs {len(acts)} actual tensors"
            )
        for r, a in zip(refs, acts, strict=True):
            for m, s in zip(self.metrics, states, strict=True):
                m.update(s, r.float(), a.float())

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
) -> DebugReport:
    """Compare ``float_model`` with ``quant_model`` (and ``lowered``) over ``inputs`` batches.

    ``float_model`` must carry handles (``generate_numeric_debug_handle``) and ``quant_model``
    must come from it through prepare/convert (or save/load, re-export). Raises
    ``NoMatchingHandlesError`` when no group matches. See the module docstring for columns.
    """
    float_gm = as_graph_module(float_model, "debug_numerics(float_model)")
    quant_gm = as_graph_module(quant_model, "debug_numerics(quant_model)")
    match = match_programs(float_gm, quant_gm)
    fg, qg, handles = match.float_groups, match.quant_groups, match.matched
    low_groups: GraphGroups | None = None
    low_handles: list[int] = []
    if isinstance(lowered, GraphModule):
        low_groups = GraphGroups.build(lowered)
        low_handles = [h for h in handles if h in low_groups.rep]
    donors = build_group_programs(qg, handles) if isolated else {}
    columns = [FQ] + ([FQ_ISO] if isolated else [])
    if lowered is not None:
        columns += [QL, FL]
    acc = _Acc(metrics)
    n = 0
    for args in as_batches(inputs):
        n += 1
        f_out, f_vals = record_run(float_gm, fg, args, handles)
        q_out, q_vals = record_run(quant_gm, qg, args, handles)
        for h in handles:
            acc.update(h, FQ, f_vals[h], q_vals[h])
        acc.update("output", FQ, f_out, q_out)
        if isolated:
            _, iso = mixed_run(float_gm, fg, args, handles, donors, replace=False)
            for h in handles:
                acc.update(h, FQ_ISO, f_vals[h], iso[h])
        if lowered is not None:
            if low_groups is not None:
                l_out, l_vals = record_run(lowered, low_groups, args, low_handles)
                for h in low_handles:
                    acc.update(h, QL, q_vals[h], l_vals[h])
                    acc.update(h, FL, f_vals[h], l_vals[h])
            else:
                with torch.no_grad():
                    l_out = lowered(*args)
            acc.update("output", QL, q_out, l_out)
            acc.update("output", FL, f_out, l_out)
    if n == 0:
        raise ValueError("debug_numerics: inputs gave no batch")
    rows = []
    for h in handles:
        qn, fn = qg.rep[h], fg.rep[h]
        rows.append(
            LayerRow(
                handle=h,
                module_path=module_path(fn),
                source=source_line(fn),
                op=str(getattr(fn.target, "__name__", fn.target)),
                ref_node=fg.out[h].name if get_handle(fg.out[h]) is not None else fn.name,
                actual_node=qn.name,
                absorbed=list(fg.absorbed.get(h, [])),
                metrics=acc.result(h),
                weight_sqnr_per_channel=weight_sqnr_per_channel(fg, qg, h) if weights else None,
            )
        )
    return DebugReport(
        columns=columns,
        metrics=list(metrics),
        rows=rows,
        output=acc.result("output"),
        unmatched_ref=match.unmatched_ref,
        unmatched_actual=match.unmatched_actual,
        num_batches=n,
    )
