"""MSE-optimal and percentile activation observers, selectable per quantizer config."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pt2q.algorithms import with_activation_observer
from pt2q.observer import HistogramObserver, MinMaxObserver
from pt2q.observer.mse import MSEObserver, mse_range_search
from pt2q.observer.percentile import PercentileObserver, histogram_percentiles
from pt2q.quantize_pt2e import prepare_pt2e
from pt2q.quantizers import XNNPACKQuantizer, get_symmetric_quantization_config


def _mse(obs: nn.Module, x: torch.Tensor) -> float:
    scale, zp = obs.calculate_qparams()  # type: ignore[operator]
    fq = torch.fake_quantize_per_tensor_affine(x, float(scale), int(zp), -128, 127)
    return float((fq - x).pow(2).mean())


def _heavy_tailed() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.distributions.Laplace(0.0, 1.0).sample((200_000,))  # max ~ 12 b


def test_mse_observer_beats_minmax_and_histogram_on_heavy_tails() -> None:
    x = _heavy_tailed()
    errors = {}
    for cls in (MinMaxObserver, HistogramObserver, MSEObserver):
        obs = cls(dtype=torch.int8, quant_min=-128, quant_max=127)
        obs(x)
        errors[cls.__name__] = _mse(obs, x)
    assert errors["MSEObserver"] < 0.9 * errors["MinMaxObserver"]  # 0.85x measured
    assert errors["MSEObserver"] <= errors["HistogramObserver"] * 1.01


def test_mse_range_search_symmetric_and_grid() -> None:
    hist = torch.zeros(100)
    hist[45:55] = 1e5  # mass in [-0.1, 0.1] of [-1, 1]: rounding noise outweighs clipping
    hist[0] = hist[-1] = 1.0  # two outliers at the ends
    lo, hi = mse_range_search(hist, -1.0, 1.0, 255, symmetric=True, grid=64)
    assert lo == -hi and 0.1 <= hi < 0.5  # the outliers are clipped
    with pytest.raises(ValueError, match="grid must be an int >= 2"):
        MSEObserver(grid=1)


def test_percentile_observer_clips_at_the_percentile() -> None:
    x = torch.linspace(-1.0, 1.0, 100_001)
    obs = PercentileObserver(dtype=torch.int8, quant_min=-128, quant_max=127, percentile=99.0)
    obs(x)
    lo, hi = histogram_percentiles(obs.histogram, -1.0, 1.0, 0.01, 0.99)
    assert lo == pytest.approx(-0.98, abs=2e-3) and hi == pytest.approx(0.98, abs=2e-3)
    scale, _ = obs.calculate_qparams()
    assert float(scale) == pytest.approx(1.96 / 255, rel=1e-2)
    with pytest.raises(ValueError, match=r"percentile must be in \(50, 100\]"):
        PercentileObserver(percentile=40)


def test_with_activation_observer_selects_per_quantizer_config() -> None:
    config = with_activation_observer(
        get_symmetric_quantization_config(is_per_channel=True),
        PercentileObserver.with_args(percentile=99.9),
    )
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4)).eval()
    gm = torch.export.export(model, (torch.randn(2, 8),)).module()
    prepared = prepare_pt2e(gm, XNNPACKQuantizer().set_global(config))
    kinds = {type(m).__name__ for m in prepared.modules()}
    assert "PercentileObserver" in kinds and "PerChannelMinMaxObserver" in kinds
    assert "HistogramObserver" not in kinds
    with pytest.raises(ValueError, match="QAT config"):
        with_activation_observer(get_symmetric_quantization_config(is_qat=True), MSEObserver)
