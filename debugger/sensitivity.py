"""Layer sensitivity: the model output error when only one group is quantized, and when only
one group is left in float.

Both are mixed runs of the two graphs already at hand (no re-quantization):

    only_quantized[h]: run the float graph; h's group comes from the quantized graph
    only_float[h]:     run the quantized graph; h's group comes from the float graph

A layer with a low ``only_quantized`` SQNR is hurt by quantization on its own; a high
``only_float`` SQNR means leaving it in float recovers much of the output.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from pt2q.debugger.debug import as_batches, as_graph_module, match_programs
from pt2q.debugger.execute import build_group_programs, mixed_run, record_run
from pt2q.debugger.groups import GraphGroups, is_dequantize_node
from pt2q.debugger.handles import module_path
from pt2q.debugger.metrics import get_metric
from torch.export import ExportedProgram
from torch.fx import GraphModule
from torch.utils._pytree import tree_leaves

__all__ = ["SensitivityRow", "rank_sensitivity", "quantized_handles"]


@dataclass
class SensitivityRow:
    """Output ``metric`` with only this group quantized / only this group in float."""

    handle: int
    module_path: str
    node: str
    only_quantized: float
    only_float: float


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
    handles = quantized_handles(qg, match.matched)
    q_progs = build_group_programs(qg, match.matched)
    f_progs = build_group_programs(fg, match.matched)
    m = get_metric(metric)
    only_q = {h: m.init() for h in handles}
    only_f = {h: m.init() for h in handles}
    for args in as_batches(inputs):
        f_out, _ = record_run(float_gm, fg, args, [])
        for h in handles:
            out_q, _ = mixed_run(float_gm, fg, args, [], {h: q_progs[h]}, replace=True)
            _fold(metric, only_q[h], f_out, out_q)
            out_f, _ = mixed_run(quant_gm, qg, args, [], {h: f_progs[h]}, replace=True)
            _fold(metric, only_f[h], f_out, out_f)
    rows = [
        SensitivityRow(
            h, module_path(qg.rep[h]), qg.rep[h].name, m.finalize(only_q[h]), m.finalize(only_f[h])
        )
        for h in handles
    ]
    sign = 1.0 if m.higher_is_better else -1.0
    rows.sort(key=lambda r: sign * r.only_quantized)
    return rows
