"""Per-token (8da8w) linears without VNNI (mocked): each gets the saturating kernel on its
full-range tokens or 7-bit tokens, whichever measured closer on the example inputs
(``lowering/x86/token_forms.py``); the report names the form and the measurement; VNNI / AMX
keep the exact full-range tokens."""

from __future__ import annotations

import pytest
import torch
from x86_models import quantize

from pt2q.lowering.x86 import CpuInt8Isa, lower_pt2e_quantized_to_x86
from pt2q.lowering.x86.activation_forms import FORM_7BIT, FORM_SATURATING
from pt2q.lowering.x86.token_forms import choose_token_forms
from pt2q.qdq import LoweringStatus

AVX2 = CpuInt8Isa(vnni=False, amx=False, avx512=False)
VNNI = CpuInt8Isa(vnni=True, amx=False, avx512=True)


@pytest.fixture(scope="module")
def two_linears() -> tuple[torch.nn.Module, torch.fx.GraphModule, torch.Tensor]:
    """Two per-token linears (X86InductorQuantizer's default for linears without a fused
    activation): the first with uniform weights (many near the int8 extremes: full-range token
    pairs, centred on a zero point near 128, saturate int16), the second with small Gaussian
    weights and one outlier column that sets each row's scale (few large int8 weights)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.LayerNorm(64),
        torch.nn.Linear(64, 48),
        torch.nn.LayerNorm(48),
        torch.nn.Linear(48, 32),
    ).eval()
    with torch.no_grad():
        model[1].weight.uniform_(-1.0, 1.0)
        model[3].weight.normal_(0.0, 0.02)
        model[3].weight[:, 0] = 1.0
    x = torch.randn(6, 64)
    return model, quantize(model, (x,), token_dynamic=True), x


def test_each_linear_gets_its_measured_token_form(
    two_linears: tuple[torch.nn.Module, torch.fx.GraphModule, torch.Tensor],
) -> None:
    _, ref, x = two_linears
    assert choose_token_forms(ref, VNNI, (x,)) == {}
    forms = choose_token_forms(ref, AVX2, (x,))
    assert {name: form for name, (form, _) in forms.items()} == {
        "linear": FORM_7BIT,
        "linear_1": FORM_SATURATING,
    }
    for _, why in forms.values():
        assert why.startswith("no VNNI (avx2 (no vnni, no amx)), uint8 tokens -> ")
        assert "saturating (vpmaddubsw) -" in why and "7-bit -" in why


def test_the_lowering_reports_and_runs_the_forms(
    two_linears: tuple[torch.nn.Module, torch.fx.GraphModule, torch.Tensor],
) -> None:
    """The report's kernels and reasons name the forms; the program runs them (the 7-bit
    tokens change the first linear's output against the exact VNNI lowering; this CPU computes
    the saturating form exactly) and stays close to the reference."""
    model, ref, x = two_linears
    low = lower_pt2e_quantized_to_x86(ref, (x,), compile=False, isa=AVX2, payoff=False)
    linears = {d.node: d for d in low.report if d.op == "aten.linear.default"}
    assert all(d.status is LoweringStatus.LOWERED for d in linears.values())
    assert linears["linear"].kernel == "onednn.qlinear_pointwise (8da8w, 7-bit tokens)"
    assert linears["linear_1"].kernel == "onednn.qlinear_pointwise (8da8w, saturating tokens)"
    assert linears["linear"].reason.startswith("no VNNI (avx2 (no vnni, no amx)), uint8 tokens")
    on_vnni = lower_pt2e_quantized_to_x86(ref, (x,), compile=False, isa=VNNI, payoff=False)
    with torch.no_grad():
        got, exact, reference = low(x), on_vnni(x), ref(x)
    assert not torch.equal(got, exact)  # the first linear's 7-bit tokens
    torch.testing.assert_close(got, reference, atol=0.1, rtol=0.1)
