"""torchao-compatible flow: loggers, extract, compare_results with groups and match reports."""

from __future__ import annotations

import pytest
import torch
from dbg_models import ConvBnNet, Mlp, batches

from pt2q.debugger import (
    NoMatchingHandlesError,
    OutputLogger,
    compare_results,
    extract_results_from_loggers,
    generate_numeric_debug_handle,
    get_handle,
    prepare_for_propagation_comparison,
)


def test_torchao_flow_with_bn_group(convbn) -> None:
    ep, quant, xs = convbn
    ref_m = prepare_for_propagation_comparison(ep.module())
    act_m = prepare_for_propagation_comparison(quant)
    assert sum(isinstance(m, OutputLogger) for m in ref_m.modules()) == 5
    assert sum(isinstance(m, OutputLogger) for m in act_m.modules()) == 4  # bn folded away
    for x in xs:
        ref_m(x)
        act_m(x)
    ref, act = extract_results_from_loggers(ref_m), extract_results_from_loggers(act_m)
    name, stack, stats = ref[next(iter(ref))]  # unpacks like torchao's 3-tuple
    assert len(stats) == 3
    res = compare_results(ref, act)
    handles = {n.name: get_handle(n) for n in ep.module().graph.nodes if get_handle(n)}
    assert res.matched == [handles[k] for k in ("conv2d", "relu", "mean", "linear")]
    assert res.absorbed == {handles["conv2d"]: [handles["batch_norm"]]}
    assert res.unmatched_ref == [] and res.unmatched_actual == []
    conv = res[handles["conv2d"]]
    assert conv.ref_node_name == "conv2d" and conv.actual_node_name == "conv2d"
    assert len(conv.results) == 3
    # fusion-aware: the folded conv against the float conv->bn output, no false alarm
    assert min(r.sqnr for r in conv.results) > 35.0
    assert conv.results[0].mse_loss < 1e-3
    assert conv.actual_module_stack == "conv"


def test_no_common_handle_raises() -> None:
    x = batches((2, 16), 1)[0]
    a = torch.export.export(ConvBnNet(), (batches((2, 3, 8, 8), 1)[0],))
    b = torch.export.export(Mlp(), (x,))
    generate_numeric_debug_handle(a)
    generate_numeric_debug_handle(b)
    ra = prepare_for_propagation_comparison(a.module())
    rb = prepare_for_propagation_comparison(b.module())
    ra(batches((2, 3, 8, 8), 1)[0])
    rb(x)
    with pytest.raises(NoMatchingHandlesError, match="none of the 5 reference keys appears"):
        compare_results(extract_results_from_loggers(ra), extract_results_from_loggers(rb))


def test_model_without_handles_or_provenance_is_refused() -> None:
    gm = torch.fx.symbolic_trace(Mlp())  # no export: no from_node provenance
    with pytest.raises(ValueError, match="numeric debug handle or from_node provenance"):
        prepare_for_propagation_comparison(gm)
