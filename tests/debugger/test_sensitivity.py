"""Sensitivity ranking finds an injected outlier channel; auto_fallback fixes it reproducibly."""

from __future__ import annotations

import torch
from dbg_models import Mlp, batches, quantize_with_handles
from dbg_toy_quantizer import ToyQuantizer

from pt2q.debugger import auto_fallback, rank_sensitivity
from pt2q.debugger.fallback import output_metric, quantize


def test_outlier_channel_ranked_first() -> None:
    calib = batches((8, 16), 4, seed=0)
    ep, quant = quantize_with_handles(Mlp(outlier=True), calib[0], calib)
    rows = rank_sensitivity(ep, quant, batches((8, 16), 2, seed=1))
    paths = [r.module_path for r in rows]
    assert paths[0] == "fc2", [(r.module_path, r.node, r.only_quantized) for r in rows]
    assert rows[0].node == "linear_1+relu_1"  # one quantized unit: its q/dq sits after relu
    assert rows[0].only_quantized < rows[1].only_quantized - 10.0
    # leaving fc2 alone in float recovers the most
    assert max(rows, key=lambda r: r.only_float).module_path == "fc2"


def test_auto_fallback_reaches_target_and_reproduces() -> None:
    calib = batches((8, 16), 4, seed=0)
    evals = batches((8, 16), 2, seed=1)
    ep = torch.export.export(Mlp(outlier=True), (calib[0],))
    from pt2q.debugger import generate_numeric_debug_handle

    generate_numeric_debug_handle(ep)
    result = auto_fallback(ep, ToyQuantizer, calib, evals, target=30.0)
    assert result.reached
    # fc2 first; fc3 quantizes its input with the same outlier-dominated q/dq, so it follows
    assert result.module_names == ["fc2", "fc3"]
    assert result.history[0][1] < 30.0 <= result.value
    # the returned quantizer reproduces the figure
    again = quantize(ep.module(), result.quantizer, calib)
    with torch.no_grad():
        refs = [ep.module()(x) for x in evals]
        outs = [again(x) for x in evals]
    assert output_metric("sqnr")(refs, outs) == result.value
