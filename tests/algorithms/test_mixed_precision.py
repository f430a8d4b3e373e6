"""Mixed precision to a target: the fewest ops left float for the output SQNR to reach it."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from algorithm_models import exported
from torch import nn

from pt2q.algorithms import keep_float_to_target, quantize
from pt2q.algorithms.batches import call, output_sqnr
from pt2q.algorithms.mixed_precision import mixed_precision_search
from pt2q.convert.qdq import observer_of
from pt2q.qdq.ops import is_dequantize
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizers import XNNPACKQuantizer, get_symmetric_quantization_config
from pt2q.quantizers.coverage import coverage

pytestmark = pytest.mark.filterwarnings(
    "ignore::pt2q.convert.health_check.QuantizationHealthWarning"
)


class ChaoticChain(nn.Module):
    """linear -> tanh, eight times, weights at gain 3: a chaotic network (each layer stretches a
    perturbation more than the signal), so early rounding costs the output most."""

    def __init__(self, dim: int = 32, depth: int = 8) -> None:
        super().__init__()
        self.fcs = nn.ModuleList(nn.Linear(dim, dim) for _ in range(depth))
        with torch.no_grad():
            for fc in self.fcs:
                fc.weight.normal_(0.0, 3.0 / math.sqrt(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for fc in self.fcs:
            x = torch.tanh(fc(x))
        return x


def _setup() -> tuple[nn.Module, list[torch.Tensor], torch.fx.GraphModule]:
    torch.manual_seed(0)
    model = ChaoticChain().eval()
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(64, 32, generator=g) for _ in range(4)]
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config())
    prepared = prepare_pt2e(exported(model, batches[0]), quantizer)
    for b in batches[:3]:
        prepared(b)
    return model, batches, prepared


def _sqnr(model: nn.Module, prepared: torch.fx.GraphModule, batches: list[torch.Tensor]) -> float:
    converted = convert_pt2e(copy.deepcopy(prepared))
    return output_sqnr([call(model, b) for b in batches], [call(converted, b) for b in batches])


def _linears(gm: torch.fx.GraphModule) -> list[torch.fx.Node]:
    return [n for n in gm.graph.nodes if n.target == torch.ops.aten.linear.default]


def test_reaches_the_target_with_the_fewest_ranked_ops_float() -> None:
    model, batches, prepared = _setup()
    fit = batches[:3]
    plain = _sqnr(model, prepared, fit)
    target = plain + 6.0
    result = mixed_precision_search(prepared, fit, target)
    print(f"plain {plain:.2f} dB, target {target:.2f}: {result}")
    assert result.reached and result.score >= target
    assert result.int8_score == pytest.approx(plain)
    assert 0 < len(result.kept_float) < len(result.alone)
    # a chaotic chain: the first linear's rounding costs the output most
    assert result.kept_float[0] == "linear"
    assert result.float_mac_share is not None and 0.0 < result.float_mac_share < 1.0
    # minimal along the ranking: the cheapest op of the float set, back in int8, misses it
    fewer = copy.deepcopy(prepared)
    still_float = set(result.kept_float[:-1])
    for node in list(fewer.graph.nodes):
        if observer_of(fewer, node) is not None and still_float & {u.name for u in node.users}:
            node.replace_all_uses_with(node.args[0])
            fewer.graph.erase_node(node)
    fewer.recompile()
    assert _sqnr(model, fewer, fit) < target

    kept = keep_float_to_target(prepared, fit, target)
    assert kept == list(result.kept_float)
    assert _sqnr(model, prepared, fit) == pytest.approx(result.score)
    converted = convert_pt2e(copy.deepcopy(prepared))
    for node in _linears(converted):
        reads_dq = [is_dequantize(a) for a in node.args[:2] if isinstance(a, torch.fx.Node)]
        assert reads_dq == ([False, False] if node.name in kept else [True, True]), node.name
    reasons = converted.meta["pt2q"]["kept_float_ops"]
    assert set(reasons) == set(kept)
    assert reasons["linear"].startswith(
        f"mixed_precision: target {target:.4g} reached with {len(kept)} of "
    )
    assert "% of the conv / linear MACs" in reasons["linear"]
    report = coverage(prepared)  # the coverage report (linears here; tanh is not reported) too
    linears = {n.name for n in _linears(prepared)}
    assert report.float_reasons == {name: reasons[name] for name in kept if name in linears}
    assert set(report.quantized) == linears - set(kept)
    assert _sqnr(model, prepared, batches[3:]) > _sqnr(model, _setup()[2], batches[3:])


def test_nothing_float_when_int8_reaches_the_target() -> None:
    model, batches, prepared = _setup()
    plain = _sqnr(model, prepared, batches[:3])
    before = prepared.code
    assert keep_float_to_target(prepared, batches[:3], plain - 1.0) == []
    assert prepared.code == before


def test_budget_bounds_what_goes_float_and_says_the_target_was_missed() -> None:
    _, batches, prepared = _setup()
    kept = keep_float_to_target(prepared, batches[:3], 200.0, budget=0.2)
    assert kept == ["linear", "tanh", "linear_1"]  # floor(0.2 * 16 ops: 8 linear, 8 tanh)
    reason = prepared.meta["pt2q"]["kept_float_ops"]["linear"]
    assert "target 200 NOT reached within the budget with 3 of 16 quantized ops float" in reason


def test_bad_arguments_name_themselves() -> None:
    _, batches, prepared = _setup()
    with pytest.raises(ValueError, match=r"mixed_precision: budget must be a fraction in \(0, 1\]"):
        keep_float_to_target(prepared, batches, 30.0, budget=0.0)
    with pytest.raises(ValueError, match="mixed_precision: target must be a finite score"):
        keep_float_to_target(prepared, batches, math.nan)
    with pytest.raises(ValueError, match="needs at least one calibration batch"):
        keep_float_to_target(prepared, [], 30.0)


def test_quantize_runs_it_only_with_a_target() -> None:
    model, batches, _ = _setup()
    gm = exported(model, batches[0])
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config())
    methods = ("bias_correction", "mixed_precision")
    with pytest.raises(ValueError, match="method 'mixed_precision' needs target="):
        quantize(gm, quantizer, batches, methods)
    with pytest.raises(ValueError, match=r"target=20.0 is used only by method 'mixed_precision'"):
        quantize(gm, quantizer, batches, ("bias_correction",), target=20.0)
    _, report = quantize(gm, quantizer, batches, "auto", adaround_seconds=0.2)
    step = next(s for s in report.steps if s.method == "mixed_precision")
    assert (step.method, step.kept, step.detail) == (
        "mixed_precision",
        False,
        "not applicable (no target=)",
    )
    target = report.plain_sqnr_db + 6.0
    _, report = quantize(gm, quantizer, batches, methods, target=target)
    step = next(s for s in report.steps if s.method == "mixed_precision")
    assert step.method == "mixed_precision" and step.kept
    assert step.detail.startswith(f"mixed_precision: target {target:.4g} reached with ")
    assert report.sqnr_db > report.plain_sqnr_db + 3.0


def test_x86_lowering_report_quotes_why_an_op_stayed_float() -> None:
    from pt2q.lowering import lower_pt2e_quantized_to_x86, lowering_report
    from pt2q.quantizers import X86InductorQuantizer, get_default_x86_inductor_quantization_config

    model, batches, _ = _setup()
    quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(exported(model, batches[0]), quantizer)
    for b in batches[:3]:
        prepared(b)
    kept = keep_float_to_target(prepared, batches[:3], _sqnr(model, prepared, batches[:3]) + 6.0)
    converted = convert_pt2e(prepared)
    lowered = lower_pt2e_quantized_to_x86(converted, (batches[0],))
    lines = {ln.split()[1]: ln for ln in str(lowering_report(lowered)).splitlines()[1:]}
    assert kept and set(kept) < set(lines)
    for name in kept:
        expected = f"activation input of {name} is not dequantized (mixed_precision: target"
        assert expected in lines[name]
    others = set(lines) - set(kept)
    assert all("mixed_precision" not in lines[n] for n in others)


class Fork(nn.Module):
    """fc0 -> tanh read by two linears (one observer for their shared input) -> add."""

    def __init__(self) -> None:
        super().__init__()
        self.fc0, self.fc_a, self.fc_b = (nn.Linear(16, 16) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.fc0(x))
        return self.fc_a(h) + self.fc_b(h)


def test_an_int8_op_sharing_an_input_with_a_float_op_says_why_it_reads_float(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pt2q.algorithms import mixed_precision
    from pt2q.lowering import lower_pt2e_quantized_to_x86, lowering_report
    from pt2q.quantizers import X86InductorQuantizer, get_default_x86_inductor_quantization_config

    torch.manual_seed(0)
    model = Fork().eval()
    batches = [torch.randn(8, 16) for _ in range(3)]
    quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(exported(model, batches[0]), quantizer)
    for b in batches:
        prepared(b)
    fc_a, fc_b = [n.name for n in _linears(prepared)][1:]
    chosen = mixed_precision.MixedPrecisionResult(
        30.0, 20.0, {"linear": 40.0, fc_a: 21.0, fc_b: 35.0}, (fc_a,), 31.0, True, 0.33
    )
    monkeypatch.setattr(mixed_precision, "mixed_precision_search", lambda *a, **k: chosen)
    assert keep_float_to_target(prepared, batches, 30.0) == [fc_a]
    reasons = prepared.meta["pt2q"]["kept_float"]
    assert reasons == {
        "tanh": f"mixed_precision: read also by {fc_a}, left to compute in float (one observer "
        "per value: its int8 readers read it float too)"
    }
    lowered = lower_pt2e_quantized_to_x86(convert_pt2e(prepared), (batches[0],))
    lines = {ln.split()[1]: ln for ln in str(lowering_report(lowered)).splitlines()[1:]}
    assert "not dequantized (mixed_precision: target 30 reached with 1 of 3" in lines[fc_a]
    # fc_b keeps its int8 weight on a float input: the weight-only form, or float with the reason
    assert "the quantizer left it float" not in lines[fc_b]
    assert "mixed_precision" not in lines["linear"]  # fc0 is untouched (too small to pay)
