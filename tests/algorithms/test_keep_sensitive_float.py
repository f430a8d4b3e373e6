"""Sensitivity-based mixed precision: the activation whose int8 costs the output most stays float."""

from __future__ import annotations

import copy

import pytest
import torch
from algorithm_models import exported
from torch import nn

from pt2q.algorithms import METHODS, keep_unhealthy_float, quantize
from pt2q.algorithms.batches import call, output_sqnr
from pt2q.algorithms.keep_float import FLAGS
from pt2q.algorithms.sensitivity import keep_sensitive_float, sensitivity_search
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizers import XNNPACKQuantizer, get_symmetric_quantization_config


class CrushedChain(nn.Module):
    """linear -> relu stages; the second stage's output has one channel offset by 1000, which a
    mask multiply then zeroes: its per-tensor int8 range (step ~8) crushes every other value."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        self.fcs = nn.ModuleList(nn.Linear(dim, dim) for _ in range(4))
        self.head = nn.Linear(dim, 8)
        self.register_buffer("mask", torch.ones(dim))
        with torch.no_grad():
            self.fcs[1].bias[0] = 1000.0
            self.mask[0] = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fcs[0](x))
        x = torch.relu(self.fcs[1](x)) * self.mask
        x = torch.relu(self.fcs[2](x))
        x = torch.relu(self.fcs[3](x))
        return self.head(x)


def _batches(n: int = 4) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(16, 32, generator=g) for _ in range(n)]


def _calibrated(model: nn.Module, batches: list[torch.Tensor]) -> torch.fx.GraphModule:
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config())
    prepared = prepare_pt2e(exported(model, batches[0]), quantizer)
    for b in batches:
        prepared(b)
    return prepared


def _crushed() -> tuple[nn.Module, list[torch.Tensor], torch.fx.GraphModule]:
    torch.manual_seed(0)
    model = CrushedChain().eval()
    batches = _batches()
    return model, batches, _calibrated(model, batches[:3])


def _sqnr(model: nn.Module, gm: torch.fx.GraphModule, batch: torch.Tensor) -> float:
    converted = convert_pt2e(copy.deepcopy(gm))
    return output_sqnr([call(model, batch)], [call(converted, batch)])


@pytest.mark.filterwarnings("ignore::pt2q.convert.health_check.QuantizationHealthWarning")
def test_sensitivity_keeps_the_crushed_activation_float_and_lifts_sqnr() -> None:
    model, batches, prepared = _crushed()
    plain = _sqnr(model, prepared, batches[3])
    kept = keep_sensitive_float(prepared, batches[:3])
    after = _sqnr(model, prepared, batches[3])
    reasons = prepared.meta["pt2q"]["kept_float"]
    print(f"plain {plain:.2f} dB -> {after:.2f} dB, kept {kept}: {reasons}")
    assert kept == ["relu_1"]  # the 1000x channel's stage
    assert after > plain + 10.0
    assert reasons["relu_1"].startswith("sensitivity: int8 here cost")
    converted = convert_pt2e(copy.deepcopy(prepared))
    assert converted.meta["pt2q"]["kept_float"] == reasons


@pytest.mark.filterwarnings("ignore::pt2q.convert.health_check.QuantizationHealthWarning")
def test_bypass_scores_what_convert_gives_without_the_observer() -> None:
    model, batches, prepared = _crushed()
    result = sensitivity_search(prepared, batches[:3], budget=0.2)
    keep_sensitive_float(prepared, batches[:3], budget=0.2)
    ref = [call(model, b) for b in batches[:3]]
    converted = convert_pt2e(copy.deepcopy(prepared))
    exact = output_sqnr(ref, [call(converted, b) for b in batches[:3]])
    assert result.score == pytest.approx(exact, abs=1e-9)
    assert result.score > result.int8_score and not result.timed_out


@pytest.mark.filterwarnings("ignore::pt2q.convert.health_check.QuantizationHealthWarning")
def test_budget_caps_the_number_kept_float() -> None:
    _, batches, prepared = _crushed()
    free = sensitivity_search(prepared, batches[:3], budget=1.0, min_gain=0.0)
    capped = sensitivity_search(prepared, batches[:3], budget=0.2, min_gain=0.0)
    limit = int(0.2 * capped.candidates)
    print(free.kept, capped.kept, capped.candidates)
    assert len(free.kept) > limit
    assert len(capped.kept) == limit and capped.kept == free.kept[:limit]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"budget": 0.0}, "budget must be a fraction", id="zero-budget"),
        pytest.param({"budget": 1.5}, "budget must be a fraction", id="budget-above-one"),
        pytest.param({"min_gain": -0.1}, "min_gain must be in", id="negative-min-gain"),
        pytest.param({"max_candidates": 0}, "max_candidates must be an int", id="no-candidates"),
        pytest.param({"seconds": 0.0}, "seconds must be None or > 0", id="no-time"),
        pytest.param({"rank_batches": 0}, "rank_batches must be an int", id="no-rank-batch"),
    ],
)
def test_invalid_arguments_raise(kwargs: dict[str, float], message: str) -> None:
    _, batches, prepared = _crushed()
    with pytest.raises(ValueError, match=message):
        keep_sensitive_float(prepared, batches[:3], **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected keyword"):
        keep_sensitive_float(prepared, batches[:3], fraction=0.1)  # type: ignore[call-arg]


@pytest.mark.filterwarnings("ignore::pt2q.convert.health_check.QuantizationHealthWarning")
def test_quantize_runs_sensitivity_after_keep_float_with_its_metric() -> None:
    assert METHODS.index("keep_float") < METHODS.index("gptq") < METHODS.index("sensitivity")
    torch.manual_seed(0)
    model = CrushedChain().eval()
    batches = _batches()
    gm = exported(model, batches[0])
    seen: list[int] = []

    def metric(ref: list[object], outs: list[object], held: list[object]) -> float:
        seen.append(len(held))
        return output_sqnr(ref, outs)

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config())
    converted, report = quantize(gm, quantizer, batches, ("sensitivity",), metric=metric)
    print(report)
    (step,) = report.steps
    assert step.method == "sensitivity" and step.kept and "relu_1" in step.detail
    assert report.sqnr_db > report.plain_sqnr_db + 10.0
    assert 3 in seen  # scored on the three fit batches, judged on the held-out one
    assert "relu_1" in converted.meta["pt2q"]["kept_float"]


def _int8_weights(gm: torch.fx.GraphModule) -> list[torch.Tensor]:
    return [t for _, t in sorted(gm.state_dict().items()) if t.dtype == torch.int8]


@pytest.mark.filterwarnings("ignore::pt2q.convert.health_check.QuantizationHealthWarning")
def test_sensitivity_scores_and_keeps_the_gptq_integers() -> None:
    """Sensitivity runs after gptq and converts copies of its prepared model: what it scores
    and what convert then folds are gptq's integers, not a re-rounding of the float weights."""
    torch.manual_seed(0)
    batches = _batches()
    gm = exported(CrushedChain().eval(), batches[0])
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config())
    rounded, gptq_only = quantize(gm, quantizer, batches, ("gptq",))
    both, report = quantize(gm, quantizer, batches, ("gptq", "sensitivity"))
    assert [s.method for s in report.steps] == ["gptq", "sensitivity"]
    assert report.steps[0].sqnr_db == gptq_only.steps[0].sqnr_db
    assert "relu_1" in both.meta["pt2q"]["kept_float"]
    plain = convert_pt2e(_calibrated(CrushedChain().eval(), batches[:3]))
    ours, theirs = _int8_weights(both), _int8_weights(rounded)
    assert len(ours) == len(theirs) >= 5  # the five linears (and the mask constant)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(ours, _int8_weights(plain), strict=True))


def test_quantize_rejects_a_bad_sensitivity_budget_before_running_anything() -> None:
    _, batches, _ = _crushed()
    gm = exported(CrushedChain().eval(), batches[0])
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config())
    with pytest.raises(ValueError, match=r"budget must be a fraction in \(0, 1\], got 2"):
        quantize(gm, quantizer, batches, sensitivity_budget=2)


class Spike(nn.Module):
    """linear -> + a constant with one value 1000x the rest (0.02 % of the values) -> linear."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 64)
        self.fc2 = nn.Linear(64, 8)
        self.register_buffer("spike", torch.zeros(64, 64))
        self.spike[0, 0] = 1000.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(x) + self.spike)


def test_keep_float_records_its_health_reason() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(64, 64, generator=g) for _ in range(2)]
    prepared = _calibrated(Spike().eval(), batches)
    kept = keep_unhealthy_float(prepared)
    reasons = prepared.meta["pt2q"]["kept_float"]
    assert kept == ["add", "linear_1"]  # the spike and what it carries to the output
    assert sorted(reasons) == kept
    for reason in reasons.values():  # "keep_float: " and the health flags pt2q.health names
        flags = reason.removeprefix("keep_float: ").split(", ")
        assert reason.startswith("keep_float: ") and set(flags) <= set(FLAGS), reason
