"""The converted program computes exactly the q/dq formulas of quantized_decomposed: checked
against a hand-written computation (round half to even, clamp) of one linear layer."""

from __future__ import annotations

import torch
from core_quantizer import CoreQuantizer
from test_specs_in_flow import export
from torch import nn

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.tolerances import QDQ_VS_HAND_REFERENCE_STEPS, assert_within_steps


def fake_quant(
    x: torch.Tensor, scale: torch.Tensor, zp: torch.Tensor, lo: int, hi: int
) -> torch.Tensor:
    # torch.round is round-half-to-even, as in quantized_decomposed
    return (torch.clamp(torch.round(x / scale) + zp, lo, hi) - zp) * scale


def test_linear_matches_hand_computed_qdq() -> None:
    torch.manual_seed(0)
    model = nn.Linear(16, 8)
    calib = torch.randn(32, 16)
    gm = prepare_pt2e(export(model, calib), CoreQuantizer())
    gm(calib)
    converted = convert_pt2e(gm)

    with torch.no_grad():
        # activation: affine uint8 from min/max (range extended to include 0)
        lo, hi = min(float(calib.min()), 0.0), max(float(calib.max()), 0.0)
        xs = torch.tensor((hi - lo) / 255.0)
        xzp = torch.clamp(0 - torch.round(torch.tensor(lo) / xs), 0, 255)
        # weight: symmetric int8 per output channel
        amax = model.weight.abs().amax(dim=1)
        ws = (amax / 127.5).unsqueeze(1)
        # bias: int32, scale = xs * ws
        bs = (xs * ws).squeeze(1)
        y = fake_quant(calib, xs, xzp, 0, 255) @ fake_quant(model.weight, ws, 0, -128, 127).T
        y = y + fake_quant(model.bias, bs, 0, -(2**31), 2**31 - 1)
        ylo, yhi = min(float(model(calib).min()), 0.0), max(float(model(calib).max()), 0.0)
        ys = torch.tensor((yhi - ylo) / 255.0)
        yzp = torch.clamp(0 - torch.round(torch.tensor(ylo) / ys), 0, 255)
        expected = fake_quant(y, ys, yzp, 0, 255)
        actual = converted(calib)
    # same quantized math; one step allowed where float re-association hits a rounding tie
    assert_within_steps(actual, expected, float(ys), QDQ_VS_HAND_REFERENCE_STEPS, "linear q/dq")
    # most outputs must be exact
    assert float(((actual - expected).abs() < 1e-6).float().mean()) > 0.95
