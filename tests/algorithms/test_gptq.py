"""pt2q.algorithms.gptq: weight integers chosen by GPTQ (+ per-group range search).

A two-linear model on correlated, unevenly scaled inputs (where the output error depends on the
inputs' second moment, as in real networks), int4 per-group weights of the LLM schemes; a small
CNN with per-channel int8 weights.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from torch import nn

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.algorithms import quantize
from pt2q.algorithms.adaround import adaround
from pt2q.algorithms.gptq import (
    GroupWeight,
    channel_weights,
    gptq,
    gptq_integers,
    group_weights,
    range_factors,
)
from pt2q.algorithms.params import get_param
from pt2q.qdq.meta import ROUNDED_WEIGHT_KEY
from pt2q.quantizers import XNNPACKQuantizer, get_symmetric_quantization_config, llm_config

qd = torch.ops.quantized_decomposed


class _Mlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Linear(64, 128)
        self.down = nn.Linear(128, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(torch.relu(self.up(x)))


def _setup() -> tuple[nn.Module, list[torch.Tensor], torch.Tensor]:
    torch.manual_seed(0)
    model = _Mlp().eval()
    mix = torch.randn(64, 64) * (torch.rand(64) * 3)  # correlated, uneven input channels
    calibration = [torch.randn(4, 16, 64) @ mix for _ in range(4)]
    test = torch.randn(4, 16, 64) @ mix  # the exported batch size
    return model, calibration, test


def _sqnr(ref: torch.Tensor, out: torch.Tensor) -> float:
    return float(10 * torch.log10(ref.pow(2).mean() / (out - ref).pow(2).mean()))


def _prepared(
    model: nn.Module, scheme: str, calibration: list[torch.Tensor]
) -> torch.fx.GraphModule:
    gm = torch.export.export(model, (calibration[0],)).module()
    prepared = prepare_pt2e(gm, XNNPACKQuantizer().set_global(llm_config(scheme, 32)))
    with torch.no_grad():
        for batch in calibration:
            prepared(batch)
    return prepared


@pytest.mark.parametrize("scheme", ["int4wo", "8da4w"])
def test_gptq_beats_per_group_min_max(scheme: str) -> None:
    model, calibration, test = _setup()
    prepared = _prepared(model, scheme, calibration)
    user_weights = {n: p.clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        ref = model(test)
        plain = convert_pt2e(copy.deepcopy(prepared))
        changed = gptq(prepared, calibration)
        improved = convert_pt2e(prepared)
        plain_db, gptq_db = _sqnr(ref, plain(test)), _sqnr(ref, improved(test))
    assert changed == ["linear", "linear_1"]
    # measured: int4wo 21.2 -> 24.5 dB, 8da4w 20.8 -> 24.3 dB
    assert gptq_db > plain_db + 2.0, (plain_db, gptq_db)
    for name, p in model.named_parameters():  # the user's model is untouched
        assert torch.equal(p, user_weights[name])
    # the same IR as the plain flow: group dequantize of int4 values in 8-bit storage
    targets = [n.target for n in improved.graph.nodes if n.op == "call_function"]
    assert targets.count(qd.dequantize_per_channel_group.default) == 2
    assert not any(t == qd.quantize_per_channel_group.default for t in targets)
    for n in improved.graph.nodes:
        if n.target == qd.dequantize_per_channel_group.default:
            q = improved.get_buffer(str(n.args[0].target))
            assert (
                q.dtype in (torch.int8, torch.uint8)
                and int(q.min()) >= n.args[3]
                and int(q.max()) <= n.args[4]
            )


def test_unfolded_convert_quantizes_back_to_the_chosen_integers() -> None:
    model, calibration, test = _setup()
    prepared = _prepared(model, "int4wo", calibration)
    gptq(prepared, calibration)
    with torch.no_grad():
        folded = convert_pt2e(copy.deepcopy(prepared))(test)
        unfolded = convert_pt2e(prepared, fold_quantize=False)(test)
    torch.testing.assert_close(unfolded, folded, rtol=0, atol=1e-5)


def test_identity_hessian_is_round_to_nearest() -> None:
    """With uncorrelated inputs no error can be compensated: GPTQ rounds to nearest."""
    model, calibration, _ = _setup()
    prepared = _prepared(model, "8da4w", calibration)
    gw: GroupWeight = group_weights(prepared)[0]
    w = get_param(prepared, gw.weight).detach()
    chosen = gptq_integers(gw, w, torch.eye(w.shape[1]), damp=0.0)
    assert torch.equal(chosen, gw.integers(w))


def test_range_factors_put_a_symmetric_int4_top_on_qmax() -> None:
    """8da4w's grid is [-8, 7] with scale max|w| / 7.5: its largest positive weight rounds
    half a step off unless the range grows by 7.5 / 7; int4wo's [0, 15] has no such factor."""
    model, calibration, _ = _setup()
    prepared = _prepared(model, "8da4w", calibration)
    sym = group_weights(prepared)[0]
    asym = group_weights(_prepared(model, "int4wo", calibration))[0]
    assert range_factors(sym)[0] == pytest.approx(7.5 / 7) and range_factors(sym)[1] == 1.0
    assert max(range_factors(asym)) == 1.0
    # a group on the grid of step 0.1 whose top, 0.7, is its largest magnitude: only the range
    # grown by 7.5 / 7 represents it exactly (scale 0.7 / 7.5 would clip it to 0.653)
    w = get_param(prepared, sym.weight).detach().clone()
    w[0, : sym.group] = 0.1 * torch.arange(sym.group).remainder(13).sub(5).float()
    w[0, sym.group - 1] = 0.7
    chosen = gptq_integers(sym, w, torch.eye(w.shape[1]), damp=0.0, factors=range_factors(sym))
    assert float(sym.scale[0, 0]) == pytest.approx(0.7 / 7)
    assert float(chosen[0, sym.group - 1]) == 7.0
    assert float(sym.dequantize(chosen)[0, sym.group - 1]) == pytest.approx(0.7)


def test_group_ranges_follow_the_updated_weights() -> None:
    """With ``factors`` each group's range is fitted when GPTQ reaches it: with an identity H
    nothing is updated, so factor 1 gives the observed min / max and rounding to nearest."""
    model, calibration, _ = _setup()
    prepared = _prepared(model, "int4wo", calibration)
    gw: GroupWeight = group_weights(prepared)[0]
    w = get_param(prepared, gw.weight).detach()
    scale = gw.scale.clone()
    nearest = gw.integers(w)
    chosen = gptq_integers(gw, w, torch.eye(w.shape[1]), damp=0.0, factors=(1.0,))
    torch.testing.assert_close(gw.scale, scale, rtol=1e-6, atol=0)
    assert torch.equal(chosen, nearest)


def test_quantize_entry_point_runs_gptq() -> None:
    model, calibration, _ = _setup()
    gm = torch.export.export(model, (calibration[0],)).module()
    quantizer = XNNPACKQuantizer().set_global(llm_config("int4wo", 32))
    _, report = quantize(gm, quantizer, calibration, methods=("gptq",))
    (step,) = report.steps
    assert step.method == "gptq" and step.kept and step.sqnr_db > report.plain_sqnr_db


def test_auto_on_an_llm_scheme_skips_what_does_not_apply() -> None:
    """adaround / bias_correction read per-tensor / per-channel weights only; on per-group
    weights they change nothing (they used to raise reshaping a (N, K/g) scale)."""
    model, calibration, _ = _setup()
    gm = torch.export.export(model, (calibration[0],)).module()
    quantizer = XNNPACKQuantizer().set_global(llm_config("int4wo", 32))
    _, report = quantize(
        gm, quantizer, calibration, methods=("gptq", "adaround", "bias_correction")
    )
    kept = {s.method: s.kept for s in report.steps}
    assert kept == {"gptq": True, "adaround": False, "bias_correction": False}


class _Cnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(8, 32, 3, padding=1)
        self.dw = nn.Conv2d(32, 32, 3, padding=1, groups=32)
        self.b = nn.Conv2d(32, 16, 3, stride=2)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.dw(torch.relu(self.a(x))))
        return self.fc(torch.relu(self.b(y)).flatten(1))


def _cnn_setup() -> tuple[nn.Module, list[torch.Tensor], torch.Tensor, torch.fx.GraphModule]:
    """Per-channel int8 weights only (activations float, so the weights' error is what the
    output shows), on smooth, channel-mixed images: correlated im2col patches."""
    torch.manual_seed(0)
    model = _Cnn().eval()
    mix = torch.randn(8, 8) * torch.rand(8) * 3

    def batch() -> torch.Tensor:
        return torch.einsum("bchw,cd->bdhw", torch.randn(4, 8, 16, 16).cumsum(-1) / 4, mix)

    calibration, test = [batch() for _ in range(4)], batch()
    config = dataclasses.replace(
        get_symmetric_quantization_config(is_per_channel=True),
        input_activation=None,
        output_activation=None,
    )
    gm = torch.export.export(model, (calibration[0],)).module()
    prepared = prepare_pt2e(gm, XNNPACKQuantizer().set_global(config))
    with torch.no_grad():
        for b in calibration:
            prepared(b)
    return model, calibration, test, prepared


def test_gptq_chooses_per_channel_conv_and_linear_integers() -> None:
    model, calibration, test, prepared = _cnn_setup()
    user_weights = {n: p.clone() for n, p in model.named_parameters()}
    # depthwise (groups > 1): its im2col is not one matrix product; left to the other methods
    assert [gw.op.name for gw in channel_weights(prepared)] == ["conv2d", "conv2d_2", "linear"]
    with torch.no_grad():
        ref = model(test)
        plain = convert_pt2e(copy.deepcopy(prepared))
        changed = gptq(prepared, calibration)
        folded = convert_pt2e(copy.deepcopy(prepared))
        unfolded = convert_pt2e(prepared, fold_quantize=False)
        plain_db, gptq_db = _sqnr(ref, plain(test)), _sqnr(ref, folded(test))
        torch.testing.assert_close(unfolded(test), folded(test), rtol=0, atol=1e-5)
    assert changed == ["conv2d", "conv2d_2", "linear"]
    assert gptq_db > plain_db + 2.5, (plain_db, gptq_db)  # measured 44.7 -> 48.5 dB
    for name, p in model.named_parameters():
        assert torch.equal(p, user_weights[name])
    # the plain flow's IR: one per-channel dequantize per weight, int8 in [-127, 127]
    deq = [n for n in folded.graph.nodes if n.target == qd.dequantize_per_channel.default]
    assert len(deq) == 4
    for n in deq:
        q = folded.get_buffer(str(n.args[0].target))
        assert q.dtype == torch.int8 and int(q.min()) >= -127 and int(q.max()) <= 127


def test_adaround_keeps_integers_gptq_chose() -> None:
    _, calibration, _, prepared = _cnn_setup()
    gptq(prepared, calibration)
    chosen = {
        n.name: n.meta[ROUNDED_WEIGHT_KEY].clone()
        for n in prepared.graph.nodes
        if ROUNDED_WEIGHT_KEY in n.meta
    }
    assert len(chosen) == 3
    adaround(prepared, calibration, seconds=2.0, iterations=20)  # may round the depthwise conv
    for name, q in chosen.items():
        node = next(n for n in prepared.graph.nodes if n.name == name)
        assert torch.equal(node.meta[ROUNDED_WEIGHT_KEY], q)
