"""Layer sensitivity: the model output error when only one group is quantized, and when only
one group is left in float.

Both are mixed runs of the two graphs already at hand (no re-quantization):

    only_quantized[h]: run the float graph; h's group comes from the quantized graph
    only_float[h]:     run the quantized graph; h's group comes from the float graph

The unit is a *quantized unit*: handles chained without q/dq between them (conv -> relu, whose
output q/dq sits after the relu) form one unit, named by its first non-root module path.

A layer with a low ``only_quantized`` SQNR is hurt by quantization on its own; a high
``only_float`` SQNR means leaving it in float recovers much of the output.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.export import ExportedProgram
from torch.fx import GraphModule
from torch.utils._pytree import tree_leaves

from pt2q.debugger.execute import build_group_programs, constant_values, mixed_run, record_run
from pt2q.debugger.groups import GraphGroups, is_dequantize_node
from pt2q.debugger.handles import module_path
from pt2q.debugger.matching import as_batches, as_graph_module, match_programs
from pt2q.debugger.metrics import get_metric

__all__ = ["SensitivityRow", "rank_sensitivity", "quantized_handles", "quantized_units"]


@dataclass
class SensitivityRow:
    """Output ``metric`` with only this unit quantized / only this unit in float.

    ``handles`` are the unit's handles in graph order; ``node`` joins their node names.
    """

    handles: list[int]
    module_path: str
    node: str
    only_quantized: float
    only_float: float


def quantized_units(groups: GraphGroups, handles: Sequence[int]) -> list[list[int]]:
    """Handles grouped into units: h joins g's unit when h reads g's value directly (no q/dq
    between) and is its only consumer. Units that quantize nothing are dropped."""
    unit_of: dict[int, list[int]] = {}
    units: list[list[int]] = []
    by_node = {groups.out[g]: g for g in handles}
    for h in handles:
        producers = [by_node[a] for a in groups.rep[h].all_input_nodes if a in by_node]
        g = producers[0] if len(producers) == 1 else None
        if g is not None and not groups.chain.get(g) and len(groups.out[g].users) == 1:
            unit_of[h] = unit_of[g]
            unit_of[h].append(h)
        else:
            unit_of[h] = [h]
            units.append(unit_of[h])
    keep = set(quantized_handles(groups, handles))
    return [u for u in units if keep.intersection(u)]


def quantized_handles(groups: GraphGroups, handles: Sequence[int]) -> list[int]:
    """Handles whose quantized group quantizes something (an output q/dq or a dq input)."""
    out = []
    for h in handles:
        rep = groups.rep[h]
        if groups.chain.get(h) or any(is_dequantize_node(a) for a in rep.all_input_nodes):
            out.append(h)
    return out


def _fold(metric: str, state: dict[str, float], ref: Any, actual: Any) -> None:
    m = get_metric(metric)
    refs = [t for t in tree_leaves(ref) if isinstance(t, torch.Tensor)]
    acts = [t for t in tree_leaves(actual) if isinstance(t, torch.Tensor)]
    for r, a in zip(refs, acts, strict=True):
        m.update(state, r.float(), a.float())


def rank_sensitivity(
    float_model: ExportedProgram | GraphModule,
    quant_model: ExportedProgram | GraphModule,
    inputs: Iterable[Any],
    metric: str = "sqnr",
) -> list[SensitivityRow]:
    """Rows for every quantized group, most sensitive first (worst ``only_quantized``).

    Costs two runs of the model per group and batch.
    """
    float_gm = as_graph_module(float_model, "rank_sensitivity(float_model)")
    quant_gm = as_graph_module(quant_model, "rank_sensitivity(quant_model)")
    match = match_programs(float_gm, quant_gm)
    fg, qg = match.float_groups, match.quant_groups
    units = quantized_units(qg, match.matched)
    consts_f, consts_q = constant_values(fg.gm), constant_values(qg.gm)
    q_progs = build_group_programs(qg, match.matched)
    f_progs = build_group_programs(fg, match.matched)
    m = get_metric(metric)
    only_q = [m.init() for _ in units]
    only_f = [m.init() for _ in units]
    for args in as_batches(inputs):
        f_out, _ = record_run(fg.gm, fg, args, [], consts_f)
        for i, unit in enumerate(units):
            donors = {h: q_progs[h] for h in unit}
            out_q, _ = mixed_run(fg.gm, fg, args, [], donors, True, consts_f, consts_q)
            _fold(metric, only_q[i], f_out, out_q)
            donors = {h: f_progs[h] for h in unit}
            out_f, _ = mixed_run(qg.gm, qg, args, [], donors, True, consts_q, consts_f)
            _fold(metric, only_f[i], f_out, out_f)
    rows = []
    for i, unit in enumerate(units):
        paths = [p for h in unit if (p := module_path(qg.rep[h]))]
        rows.append(
            SensitivityRow(
                list(unit),
                paths[0] if paths else "",
                "+".join(qg.rep[h].name for h in unit),
                m.finalize(only_q[i]),
                m.finalize(only_f[i]),
            )
        )
    sign = 1.0 if m.higher_is_better else -1.0
    rows.sort(key=lambda r: sign * r.only_quantized)
    return rows
