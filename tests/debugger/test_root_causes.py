"""Root causes: an injected fault is ranked first; tables are clean (no non-tensor rows,
pass-through ops folded); provenance handles need no handle step."""

from __future__ import annotations

import inspect

import pytest
import torch
from dbg_faults import (
    TinyBert,
    TinyResNet,
    _Layer,
    bert_inputs,
    quantize_mask_add,
    wrong_weight_scale,
    x86_quantize,
    xnnpack_quantize,
)

from pt2q.debugger import debug_numerics
from pt2q.debugger.optypes import is_pass_through
from pt2q.health import COLLAPSED


@pytest.fixture(scope="module")
def resnet() -> tuple:
    gen = torch.Generator().manual_seed(0)
    calib = [(torch.randn(4, 3, 16, 16, generator=gen),) for _ in range(3)]
    ep, quant = x86_quantize(TinyResNet(), calib)
    return ep, quant, [(torch.randn(4, 3, 16, 16, generator=gen),)]


@pytest.fixture(scope="module")
def bert() -> tuple:
    calib = bert_inputs(3, seed=0)
    ep, quant = x86_quantize(TinyBert(), calib)
    return ep, quant, calib, bert_inputs(2, seed=1)


@pytest.mark.parametrize("conv_index", [1, 3, 5])
def test_wrong_scale_on_one_conv_is_the_first_root_cause(resnet, conv_index: int) -> None:
    ep, quant, xs = resnet
    bad, conv = wrong_weight_scale(quant, conv_index, 3.0)
    report = debug_numerics(ep, bad, xs)
    causes = report.root_causes(k=5)
    assert causes[0].actual_node == conv, [(r.actual_node, r.why) for r in causes]
    assert causes[0] in report.rows  # the report's own row objects
    assert "alone" in causes[0].why and causes[0].score > 100 * causes[1].score
    # downstream rows show the error accumulated, but none of them is ranked above it
    worst_acc = report.worst_first()[:3]
    assert any(r.actual_node != conv for r in worst_acc)


def test_healthy_resnet_has_no_dominant_cause(resnet) -> None:
    ep, quant, xs = resnet
    report = debug_numerics(ep, quant, xs)
    assert report.output_value() > 25.0
    assert all(r.score < 1e-2 for r in report.rows)  # nothing worse than 20 dB introduced


def test_mask_adds_quantized_by_the_opt_in_are_the_first_root_causes() -> None:
    calib = bert_inputs(3, seed=0)
    ep, quant = xnnpack_quantize(TinyBert(), calib, quantize_masks=True)
    mask_adds = {
        n.name
        for n in ep.graph.nodes
        if n.target == torch.ops.aten.add.Tensor
        and any(u.target == torch.ops.aten.softmax.int for u in n.users)
    }
    assert len(mask_adds) == 2  # one per layer
    report = debug_numerics(ep, quant, bert_inputs(1, seed=1))
    causes = report.root_causes(k=5)
    assert {r.ep_node for r in causes[:2]} == mask_adds, [(r.ep_node, r.why) for r in causes]
    for r in causes[:2]:
        assert r.value("float~quant:isolated", "sqnr") > 40.0  # harmless-looking at its output
        assert r.value("float~quant:through", "sqnr") < 20.0  # ruinous at the softmax
        assert "softmax" in r.why
    # the same program without the opt-in: the adds stay float and nothing stands out
    ep2, quant2 = xnnpack_quantize(TinyBert(), calib, quantize_masks=False)
    clean = debug_numerics(ep2, quant2, bert_inputs(1, seed=1))
    assert clean.output_value() > report.output_value() + 5.0
    assert not {r.ep_node for r in clean.root_causes(k=2)} & mask_adds


def test_hand_quantized_mask_add_is_the_first_root_cause(bert) -> None:
    ep, quant, calib, xs = bert
    bad, add = quantize_mask_add(quant, 0, calib)
    report = debug_numerics(ep, bad, xs)
    first = report.root_causes(k=5)[0]
    assert first.actual_node == add, [(r.actual_node, r.why) for r in report.root_causes(5)]
    # at its own output the mask's magnitude hides the damage; at the softmax it shows
    assert first.value("float~quant:isolated", "sqnr") > 60.0
    assert first.value("float~quant:through", "sqnr") < 20.0
    assert first.consumer.startswith("softmax") and "softmax" in first.why
    assert COLLAPSED in first.flags and first.health is not None
    assert first.health["busiest_two_bins_share"] > 0.9
    # the softmax it ruins shows the worst accumulated error but is not blamed
    softmax = next(r for r in report.rows if r.actual_node == first.consumer)
    assert softmax.value("float~quant", "sqnr") < 20.0
    assert softmax.score < first.score / 10


def test_tables_are_clean(bert) -> None:
    ep, quant, _, xs = bert
    assert any(n.target == torch.ops.aten._assert_tensor_metadata.default for n in ep.graph.nodes)
    report = debug_numerics(ep, quant, xs[:1])
    # the source column names the model code's own line (the innermost frame outside torch:
    # _Layer.forward), not the TinyBert.forward line that calls the layer
    lines, first = inspect.getsourcelines(_Layer.forward)
    q_row = next(r for r in report.rows if r.module_path == "layers.0.q")
    file, _, line = q_row.source.rpartition(":")
    assert file.endswith("dbg_faults.py") and first < int(line) < first + len(lines)
    ops = {r.op for r in report.rows}
    assert not any("assert" in op for op in ops), ops
    # the per-token linears' run-time scale / zero point (getitems of choose_qparams, which carry
    # the handle of the value they quantize) never stand for that value's row
    assert not [r.actual_node for r in report.rows if r.actual_node.startswith("getitem")]
    assert not ({"view.default", "transpose.int", "reshape.default"} & ops), ops
    folded = {name for r in report.rows for name in r.folded}
    assert {"view", "transpose"} <= folded, folded
    full = debug_numerics(ep, quant, xs[:1], passthrough=True, isolated=False)
    kept = {r.actual_node for r in report.rows}
    extra = [r for r in full.rows if r.actual_node not in kept]
    assert folded <= {r.actual_node for r in extra}
    # the extra rows are pass-throughs: folded ones, and those of the mask input (no producer)
    assert {r.op.split(".")[0] for r in extra} <= {
        "view",
        "transpose",
        "reshape",
        "unsqueeze",
        "expand",
        "permute",
    }


def test_passthrough_classification() -> None:
    gm = torch.export.export(torch.nn.Flatten(), (torch.randn(2, 3, 4),)).module()
    nodes = [n for n in gm.graph.nodes if n.op == "call_function"]
    assert [is_pass_through(n) for n in nodes] == [True] * len(nodes)
