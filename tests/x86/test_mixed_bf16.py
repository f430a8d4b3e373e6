"""int8-mixed-bf16: float regions between int8 kernels run in bfloat16 under autocast."""

from __future__ import annotations

import pytest
import torch
from x86_models import TinyLinear, last_quantize_scale, quantize

from pt2q.lowering.x86 import lower_pt2e_quantized_to_x86
from pt2q.tolerances import LOWERED_BF16_VS_REFERENCE_STEPS, assert_within_steps


@pytest.mark.slow
def test_mixed_bf16_lowers_both_linears() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 32)
    ref = quantize(TinyLinear(), (x,))
    low = lower_pt2e_quantized_to_x86(ref, (x,), mixed_bf16=True, payoff=False)
    assert low.report.kernel_counts() == {"onednn.qlinear_pointwise.default": 2}
    with torch.no_grad():
        low(x)  # first call: the eager graph (oneDNN ops take no autocast)
        actual, expected = low(x), ref(x)  # compiled tier: float regions in bf16
    assert actual.dtype == torch.bfloat16  # the final linear's float output stays bf16
    # bf16 rounds the float output (8 mantissa bits, ~0.5 step of a 7-bit value) on top of the
    # one-step requantize tie: allowed LOWERED_BF16_VS_REFERENCE_STEPS steps.
    assert_within_steps(
        actual.float(),
        expected,
        last_quantize_scale(ref),
        LOWERED_BF16_VS_REFERENCE_STEPS,
        "int8-mixed-bf16 output",
    )
