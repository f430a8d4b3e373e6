"""Kernel choice per ISA, by mocking the CPU facts: VNNI / AMX keep full-range uint8 exactly;
without VNNI each activation group gets the saturating, 7-bit or float form by measured error."""

from __future__ import annotations

import copy

import pytest
import torch
from host_isa import HOST_ISA
from x86_models import TinyLinear, last_quantize_scale, quantize, sqnr_db

from pt2q.lowering.x86 import CpuInt8Isa, lower_pt2e_quantized_to_x86
from pt2q.lowering.x86.activation_forms import (
    FORM_7BIT,
    FORM_EXACT,
    FORM_FLOAT,
    FORM_SATURATING,
    ActivationChoice,
    _decide,
    _Noise,
    _saturating_dot,
    apply_forms,
    choose_activation_forms,
)
from pt2q.lowering.x86.isa import max_exact_activation_qmax
from pt2q.lowering.x86.lower import prepare_for_inductor
from pt2q.tolerances import LOWERED_VS_REFERENCE_STEPS, assert_within_steps, sqnr_loss_db

AVX2 = CpuInt8Isa(vnni=False, amx=False, avx512=False)
VNNI = CpuInt8Isa(vnni=True, amx=False, avx512=True)
AMX = CpuInt8Isa(vnni=False, amx=True, avx512=True)
qd = torch.ops.quantized_decomposed


@pytest.fixture(scope="module")
def full_range() -> tuple[torch.fx.GraphModule, torch.Tensor]:
    """TinyLinear, uint8 activations over [0, 255]: a (randn input, zero point ~128, uniform
    weights: many near the int8 extremes) and b (after relu, zero point 0, Gaussian weights as
    trained layers have: few near the extremes)."""
    torch.manual_seed(0)
    x = torch.randn(16, 32)
    model = TinyLinear()
    with torch.no_grad():
        model.b.weight.normal_(0.0, 0.05)
    return quantize(model, (x,), reduce_range=False), x


def test_exact_activation_range_by_isa() -> None:
    assert max_exact_activation_qmax(AVX2, torch.uint8) == 127
    assert max_exact_activation_qmax(VNNI, torch.uint8) == 255
    assert max_exact_activation_qmax(AMX, torch.uint8) == 255
    with pytest.raises(ValueError, match="expected an activation dtype torch.uint8 or torch.int8"):
        max_exact_activation_qmax(AVX2, torch.float32)


def test_saturating_dot_models_vpmaddubsw() -> None:
    a = torch.tensor([[255, 255, 1, 2]], dtype=torch.uint8)
    w = torch.tensor([[127, 127, 3, 4], [-128, -128, 0, 0]], dtype=torch.int8)
    # pair (0, 1): 2 * 255 * 127 = 64770 -> 32767; 2 * 255 * -128 -> -32768; pair (2, 3) exact.
    assert _saturating_dot(a, w).tolist() == [[32767 + 11, -32768]]
    assert sqnr_loss_db(1.0, 0.0) == 0.0
    assert sqnr_loss_db(1.0, 3.0) == pytest.approx(6.0206, abs=1e-4)


@pytest.mark.parametrize("isa", [VNNI, AMX], ids=["vnni", "amx"])
def test_vnni_and_amx_keep_the_exact_full_range_path(
    full_range: tuple[torch.fx.GraphModule, torch.Tensor], isa: CpuInt8Isa
) -> None:
    ref, x = full_range
    choices = choose_activation_forms(ref, isa, (x,))
    assert [(c.consumers, c.form) for c in choices] == [
        (("linear",), FORM_EXACT),
        (("linear_1",), FORM_EXACT),
    ]
    gm = torch.fx.GraphModule(ref, copy.deepcopy(ref.graph))
    assert not apply_forms(gm, choices)


def test_without_vnni_each_group_gets_its_measured_form(
    full_range: tuple[torch.fx.GraphModule, torch.Tensor],
) -> None:
    ref, x = full_range
    choices = choose_activation_forms(ref, AVX2, (x,))
    forms = {c.consumers: c.form for c in choices}
    # a: uniform weights near the extremes times codes near 255 saturate int16 pairs: 7-bit;
    # b: Gaussian weights, relu codes: pairs hardly saturate: the saturating kernel.
    assert forms == {("linear",): FORM_7BIT, ("linear_1",): FORM_SATURATING}
    a, b = choices
    assert a.saturating_loss_db > a.seven_bit_loss_db > 0
    assert b.seven_bit_loss_db > b.saturating_loss_db
    assert "saturating (vpmaddubsw) -" in a.reason and "7-bit -" in a.reason
    gm = torch.fx.GraphModule(ref, copy.deepcopy(ref.graph))
    assert apply_forms(gm, choices)
    (q0, s0, z0) = next(
        n.args[:3] for n in ref.graph.nodes if n.target == qd.quantize_per_tensor.default
    )
    q7 = next(n for n in gm.graph.nodes if n.target == qd.quantize_per_tensor.default)
    assert q7.args[1:] == (2 * s0, round(z0 / 2), 0, 127, torch.uint8)
    assert all(dq.args[1:] == q7.args[1:] for dq in q7.users)


def test_lowering_for_avx2_reports_the_forms(
    full_range: tuple[torch.fx.GraphModule, torch.Tensor],
) -> None:
    ref, x = full_range
    low = lower_pt2e_quantized_to_x86(ref, (x,), compile=False, isa=AVX2, payoff=False)
    report = low.report
    assert [d.node for d in report.lowered] == ["linear", "linear_1"]
    reasons = {d.node: d.reason for d in report.lowered}
    assert reasons["linear"].startswith("activations 7-bit: no VNNI (avx2 (no vnni, no amx))")
    assert reasons["linear_1"].startswith("activations saturating: no VNNI")
    assert report.facts["isa"] == "avx2 (no vnni, no amx)"
    guarded = prepare_for_inductor(ref, (x,), AVX2, payoff=False)[0]
    with torch.no_grad():
        actual, adapted, expected = low(x), guarded(x), ref(x)
    if HOST_ISA.exact_u8s8:
        # This CPU computes the saturating form exactly: the lowering is its guarded program.
        assert_within_steps(
            actual, adapted, last_quantize_scale(ref), LOWERED_VS_REFERENCE_STEPS, "avx2 form"
        )
    assert sqnr_db(actual, expected) > 20.0


def test_the_rule_picks_the_cheaper_form_or_float() -> None:
    # reference noise 1: saturating adds 0.1 (0.41 dB), 7-bit adds 3 (6.02 dB).
    assert _decide(_Noise(1.0, 0.1, 3.0))[0] == FORM_SATURATING
    assert _decide(_Noise(1.0, 30.0, 3.0))[0] == FORM_7BIT
    form, why = _decide(_Noise(1.0, 100.0, 30.0))  # 20.0 and 14.9 dB: both over 12
    assert form == FORM_FLOAT
    assert why.endswith("saturating (vpmaddubsw) -20.04 dB, 7-bit -14.91 dB: both over 12.0 dB")


def test_a_float_form_reads_the_float_activation(
    full_range: tuple[torch.fx.GraphModule, torch.Tensor],
) -> None:
    ref, x = full_range
    choices = choose_activation_forms(ref, AVX2, (x,))
    as_float = [ActivationChoice(c.quantizes, c.consumers, FORM_FLOAT, "test") for c in choices[:1]]
    gm = torch.fx.GraphModule(ref, copy.deepcopy(ref.graph))
    assert apply_forms(gm, as_float)
    linear = next(n for n in gm.graph.nodes if n.name == "linear")
    assert linear.args[0].op == "placeholder"  # the input quantize/dequantize are gone
    with torch.no_grad():
        out = gm(x)
    assert out.shape == ref(x).shape


def test_an_activation_already_on_the_grid_is_not_kept_float() -> None:
    """A dq -> max-pool -> q chain at one scale rounds nothing the second time: measured
    against the float input, the reference's noise at the consumer is 0 and any form would
    seem to lose ~100 dB (the CNN's last conv stayed float). The noise is floored at the
    rounding noise of the step (step**2 / 12 per element, through the weights)."""
    from pt2q.lowering.x86.activation_forms import _errors, _rounding_noise

    g = torch.Generator().manual_seed(0)
    s, z = 0.02, 0
    x = (torch.randint(0, 256, (32, 64), generator=g).float() - z) * s  # on the grid
    w = (torch.randn(16, 64, generator=g) * 30).round().clamp(-127, 127).to(torch.int8)
    graph = torch.fx.Graph()
    op = graph.call_function(torch.ops.aten.linear.default, (graph.placeholder("x"), None))
    noise = _errors(op, x, s, z, w)
    assert noise.reference == pytest.approx(_rounding_noise(s, w, 32))
    form, why = _decide(noise)
    assert form != FORM_FLOAT, why
