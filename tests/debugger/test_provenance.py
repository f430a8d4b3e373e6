"""No handle step: provenance handles (``from_node``), torchao-shaped results, checked against
torchao 0.18 itself in a subprocess (torchao registers global Inductor passes on import)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from dbg_models import ConvBnNet, batches
from dbg_toy_quantizer import ToyQuantizer
from torchao_peer import register, result

from pt2q.debugger import (
    NodeSourceDebugInfo,
    compare_results,
    debug_numerics,
    extract_results_from_loggers,
    generate_numeric_debug_handle,
    prepare_for_propagation_comparison,
)
from pt2q.debugger.handles import get_handle
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e


def _quantize(ep: torch.export.ExportedProgram) -> torch.fx.GraphModule:
    prepared = prepare_pt2e(ep.module(), ToyQuantizer())
    for x in batches((4, 3, 8, 8), 3, seed=0):
        prepared(x)
    return convert_pt2e(prepared)


def test_torchao_named_flow_without_handle_step() -> None:
    ep = torch.export.export(ConvBnNet(), (batches((4, 3, 8, 8), 1)[0],))
    quant = _quantize(ep)
    float_gm = ep.module()
    ref_m = prepare_for_propagation_comparison(float_gm)
    act_m = prepare_for_propagation_comparison(quant)
    assert all(get_handle(n) is None for n in float_gm.graph.nodes)  # user's graph untouched
    for x in batches((4, 3, 8, 8), 2, seed=1):
        ref_m(x)
        act_m(x)
    ref, act = extract_results_from_loggers(ref_m), extract_results_from_loggers(act_m)
    gid = id(ep.graph)
    assert set(act) == {NodeSourceDebugInfo(n, gid) for n in ("conv2d", "relu", "mean", "linear")}
    res = compare_results(ref, act)
    assert [k.name for k in res] == ["conv2d", "relu", "mean", "linear"]
    conv = res[NodeSourceDebugInfo("conv2d", gid)]
    assert conv.debug_info == NodeSourceDebugInfo("conv2d", gid)
    assert res.absorbed == {conv.debug_info: [NodeSourceDebugInfo("batch_norm", gid)]}
    assert len(conv.results) == 2 and float(conv.results[0].sqnr) > 35.0
    assert isinstance(conv.results[0].sqnr, torch.Tensor)  # torchao's losses are tensors


def test_debug_numerics_without_handle_step_equals_structural() -> None:
    xs = batches((4, 3, 8, 8), 2, seed=1)
    ep = torch.export.export(ConvBnNet(), (xs[0],))
    auto = debug_numerics(ep, _quantize(ep), xs)
    generate_numeric_debug_handle(ep)
    structural = debug_numerics(ep, _quantize(ep), xs)
    assert [r.ep_node for r in auto.rows] == [r.ep_node for r in structural.rows]
    for a, s in zip(auto.rows, structural.rows, strict=True):
        assert a.metrics == s.metrics
    assert auto.rows[0].handle != structural.rows[0].handle  # different handle spaces


def test_structural_float_vs_provenance_quant_compare_by_provenance() -> None:
    x = batches((4, 3, 8, 8), 1, seed=1)[0]
    ep = torch.export.export(ConvBnNet(), (x,))
    quant = _quantize(ep)  # quantized before the handle step
    generate_numeric_debug_handle(ep)
    ref_m = prepare_for_propagation_comparison(ep.module())
    act_m = prepare_for_propagation_comparison(quant)
    ref_m(x)
    act_m(x)
    res = compare_results(extract_results_from_loggers(ref_m), extract_results_from_loggers(act_m))
    assert [k.name for k in res] == ["conv2d", "relu", "mean", "linear"]
    report = debug_numerics(ep, quant, [x])
    assert [r.ep_node for r in report.rows] == ["conv2d", "relu", "mean", "linear"]


# Run with the other torchao snippets in one subprocess (tests/torchao_peer.py).
register(
    "debugger.provenance",
    f"""
import dataclasses, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from dbg_models import ConvBnNet, batches
from dbg_toy_quantizer import ToyQuantizer
import pt2q.debugger as ours
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
import torchao.quantization.pt2e as tao

ep = torch.export.export(ConvBnNet(), (batches((4, 3, 8, 8), 1)[0],))
prepared = prepare_pt2e(ep.module(), ToyQuantizer())
for x in batches((4, 3, 8, 8), 3, seed=0):
    prepared(x)
quant = convert_pt2e(prepared)
result = {{}}
for name, lib in (("torchao", tao), ("pt2q", ours)):
    ref_m = lib.prepare_for_propagation_comparison(ep.module())
    act_m = lib.prepare_for_propagation_comparison(quant)
    for x in batches((4, 3, 8, 8), 2, seed=1):
        ref_m(x); act_m(x)
    res = lib.compare_results(
        lib.extract_results_from_loggers(ref_m), lib.extract_results_from_loggers(act_m)
    )
    result[name] = {{
        "keys": [[k.name, k.graph_id == id(ep.graph)] for k in res],
        "sqnr": {{k.name: [float(r.sqnr) for r in s.results] for k, s in res.items()}},
        "fields": [f.name for f in dataclasses.fields(next(iter(res.values())))],
        "names": {{k.name: [s.ref_node_name, s.actual_module_stack] for k, s in res.items()}},
    }}
""",
)


def test_same_keys_and_values_as_torchao() -> None:
    out = result("debugger.provenance")
    tao, ours = out["torchao"], out["pt2q"]
    assert ours["keys"] == tao["keys"] == [[n, True] for n in ("conv2d", "relu", "mean", "linear")]
    assert ours["fields"][:6] == tao["fields"]  # torchao's fields, in torchao's order
    assert ours["names"] == tao["names"]
    # same values compared: the same SQNR up to the signal choice (torchao's compute_sqnr takes
    # the quantized tensor as the signal, pt2q the float reference: a few hundredths of a dB)
    for name in ("relu", "mean", "linear"):
        assert ours["sqnr"][name] == [pytest.approx(v, abs=0.05) for v in tao["sqnr"][name]]
    # torchao compares the folded conv with the float conv *before* BN: a false alarm
    assert max(tao["sqnr"]["conv2d"]) < 10.0 < 35.0 < min(ours["sqnr"]["conv2d"])
