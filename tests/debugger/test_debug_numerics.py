"""debug_numerics: fusion-aware BN groups, per-channel weight SQNR, accumulated vs isolated."""

from __future__ import annotations

import copy

import pytest
from dbg_models import ConvBnNet, Mlp, batches, quantize_with_handles

from pt2q.debugger import debug_numerics, get_handle
from pt2q.debugger.metrics import compute_metric


def test_bn_non_trivial_stats_no_false_alarm(convbn) -> None:
    ep, quant, xs = convbn
    report = debug_numerics(ep, quant, xs)
    assert report.columns == ["float~quant", "float~quant:isolated", "float~quant:through"]
    assert [r.module_path for r in report.rows] == ["conv", "", "", "fc"]
    conv = report.rows[0]
    assert conv.absorbed == [get_handle(n) for n in ep.graph.nodes if n.name == "batch_norm"]
    assert conv.value("float~quant", "sqnr") > 35.0
    # the pre-BN float conv output is a different tensor: a per-node comparison would alarm
    eager = ConvBnNet()
    pre_bn = eager.conv(xs[0])
    assert compute_metric("sqnr", eager.bn(pre_bn), pre_bn) < 5.0
    # per-channel weight SQNR against the BN-folded float weight: 8 channels, all good
    assert len(conv.weight_sqnr_per_channel) == 8
    assert min(conv.weight_sqnr_per_channel) > 35.0
    assert report.output_value() > 25.0
    assert report.num_batches == 3


def test_isolated_removes_upstream_error() -> None:
    calib = batches((8, 16), 4, seed=0)
    ep, quant = quantize_with_handles(Mlp(), calib[0], calib)
    bad = copy.deepcopy(quant)
    # break fc1's output quantization (scale 8x too coarse): everything downstream suffers
    relu = next(n for n in bad.graph.nodes if n.name == "relu")  # fc1 -> relu -> q -> dq
    q = next(iter(relu.users))
    for node in (q, *q.users):
        args = list(node.args)
        args[1] = args[1] * 30  # (input, scale, zero_point, qmin, qmax, dtype)
        node.args = tuple(args)
    bad.recompile()
    report = debug_numerics(ep, bad, batches((8, 16), 2, seed=1))
    by_path = {r.module_path or r.actual_node: r for r in report.rows}
    acc = {p: r.value("float~quant", "sqnr") for p, r in by_path.items()}
    iso = {p: r.value("float~quant:isolated", "sqnr") for p, r in by_path.items()}
    # the first group sees the same inputs in both modes
    assert acc["fc1"] == pytest.approx(iso["fc1"])
    # fc1's relu owns the bad q/dq: bad in both modes
    assert acc["relu"] < 20.0 and iso["relu"] < 20.0
    # fc3 inherits the error when propagated, but is fine on its own
    assert acc["fc3"] < 25.0 < 35.0 < iso["fc3"]
    assert report.worst_first("float~quant:isolated")[0].actual_node == "relu"
