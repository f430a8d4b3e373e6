"""No silent collapse: masking constants stay float (both quantizers), convert warns on
unhealthy ranges, and the health numbers mean what pt2q/health.py says."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from pt2q.convert.health_check import QuantizationHealthWarning
from pt2q.health import (
    COLLAPSED,
    OUTLIER_DOMINATED,
    SATURATED,
    HealthThresholds,
    observer_health,
    tensor_health,
)
from pt2q.observer import HistogramObserver, MinMaxObserver
from pt2q.observer.sample import SAMPLE_SIZE
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizers import (
    X86InductorQuantizer,
    XNNPACKQuantizer,
    coverage,
    get_default_x86_inductor_quantization_config,
    get_symmetric_quantization_config,
)
from pt2q.quantizers.annotators.masks import find_masks


class TinyAttention(nn.Module):
    """BERT-style self-attention + FFN with an additive padding mask built in the graph."""

    def __init__(self, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ffn = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (y.reshape(b, t, self.heads, -1).transpose(1, 2) for y in (q, k, v))
        fill = torch.where(mask[:, None, None, :].bool(), 0.0, torch.finfo(torch.float32).min)
        scores = torch.matmul(q, k.transpose(-1, -2)) * (d // self.heads) ** -0.5
        probs = torch.softmax(scores + fill, dim=-1)  # (B, H, T, T)
        h = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, d)
        h = self.out(h) + x
        return torch.relu(self.ffn(h)) + h


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 12, 32, generator=g)
    mask = torch.ones(4, 12, dtype=torch.int64)
    mask[1:, 8:] = 0  # padding
    return x, mask


QUANTIZERS = {
    "xnnpack": lambda: XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True)
    ),
    "x86": lambda: (
        X86InductorQuantizer()
        .set_global(get_default_x86_inductor_quantization_config())
        .set_function_type_qconfig(torch.matmul, get_default_x86_inductor_quantization_config())
    ),
}


def _quantize(name: str, force_masks: bool) -> tuple[nn.Module, torch.fx.GraphModule, object]:
    torch.manual_seed(0)
    model = TinyAttention().eval()
    args = _inputs()
    gm = torch.export.export(model, args).module()
    quantizer = QUANTIZERS[name]().set_mask_quantization(force_masks)
    prepared = prepare_pt2e(gm, quantizer)
    report = coverage(prepared)
    prepared(*args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        converted = convert_pt2e(prepared)
    return model, converted, (report, caught)


def _sqnr(ref: torch.Tensor, out: torch.Tensor) -> float:
    return float(10 * torch.log10(ref.pow(2).mean() / (ref - out).pow(2).mean()))


@pytest.mark.parametrize("name", ["xnnpack", "x86"])
def test_mask_add_stays_float_with_reason(name: str) -> None:
    model, converted, (report, caught) = _quantize(name, force_masks=False)
    adds = report.for_op(torch.ops.aten.add.Tensor)  # type: ignore[attr-defined]
    mask_add = adds[0]  # scores + fill
    assert not mask_add.quantized
    assert mask_add.reason.startswith(
        "carries a masking constant (fill value -3.4e+38 from 'where')"
    )
    assert "set_mask_quantization(True)" in mask_add.reason
    assert not [w for w in caught if issubclass(w.category, QuantizationHealthWarning)]
    args = _inputs()
    with torch.no_grad():
        assert _sqnr(model(*args), converted(*args)) > 25.0


def test_forced_mask_quantization_collapses_and_convert_warns() -> None:
    model, converted, (report, caught) = _quantize("xnnpack", force_masks=True)
    assert report.for_op(torch.ops.aten.add.Tensor)[0].quantized  # type: ignore[attr-defined]
    health_warnings = [w for w in caught if issubclass(w.category, QuantizationHealthWarning)]
    assert len(health_warnings) == 1
    message = str(health_warnings[0].message)
    assert "'add':" in message and COLLAPSED in message  # names the mask add
    health = converted.meta["pt2q"]["health"]["add"]
    assert health.busiest_two_bins_share > 0.99
    _, default, _ = _quantize("xnnpack", force_masks=False)
    args = _inputs()
    with torch.no_grad():
        forced_sqnr = _sqnr(model(*args), converted(*args))
        default_sqnr = _sqnr(model(*args), default(*args))
    assert forced_sqnr < default_sqnr - 6.0, (forced_sqnr, default_sqnr)  # uniform softmax


@pytest.mark.parametrize(
    "fill",
    [
        pytest.param(float("-inf"), id="minus-inf"),
        pytest.param(-1e4, id="minus-1e4"),
        pytest.param(torch.finfo(torch.float32).max, id="dtype-max"),
    ],
)
def test_fill_values_found_through_constants_and_views(fill: float) -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("fill", torch.tensor(fill))

        def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
            masked = x.masked_fill(~keep, fill)  # literal source
            bias = (1.0 - keep.float()) * self.fill  # constant source
            return torch.softmax(masked.view(2, 8) + bias.view(2, 8), -1)

    gm = torch.export.export(M(), (torch.randn(16), torch.rand(16) > 0.3)).module()
    found = {n.name: why for n, why in find_masks(gm).items()}
    assert set(found) >= {"masked_fill", "view", "mul", "view_1", "add"}
    assert "softmax" not in found  # softmax ends the fill value


def test_health_numbers() -> None:
    obs = MinMaxObserver(dtype=torch.int8, quant_min=-128, quant_max=127)
    x = torch.randn(64, 256, generator=torch.Generator().manual_seed(0))
    obs(x)
    healthy = observer_health(obs)
    assert healthy is not None and healthy.flags == ()
    assert healthy.clipping_ratio == 0.0 and healthy.values == SAMPLE_SIZE
    assert 1.0 < healthy.range_vs_percentile < 2.0  # Gaussian: max ~ 1.3 x p99.9
    x[0, 0] = 1000.0  # one outlier
    outlier = tensor_health(x, 1000.0 / 127, 0, -128, 127)
    assert outlier.flags == (OUTLIER_DOMINATED, COLLAPSED)
    assert outlier.range_vs_percentile > 100
    clipped = tensor_health(torch.linspace(-1, 1, 1001), 0.5 / 127, 0, -128, 127)
    assert clipped.clipping_ratio == pytest.approx(500 / 1001, abs=2e-3)
    assert SATURATED in clipped.flags
    # per channel: each row on its own scale is healthy
    w = torch.randn(16, 64) * torch.logspace(-2, 2, 16)[:, None]
    per_channel = tensor_health(w, w.abs().amax(1) / 127, torch.zeros(16), -127, 127, axis=0)
    assert per_channel.flags == () and per_channel.busiest_two_bins_share < 0.2
    with pytest.raises(ValueError, match="outlier_range_ratio"):
        HealthThresholds(outlier_range_ratio=0.5)


def test_histogram_observer_keeps_a_bounded_sample_and_no_state_dict_change() -> None:
    obs = HistogramObserver(dtype=torch.uint8)
    for i in range(3):
        obs(torch.randn(1000) + i)
    assert obs.health_sample.shape == (SAMPLE_SIZE,) and obs.health_seen == 3000
    assert "health_sample" not in obs.state_dict()
    health = observer_health(obs)
    assert health is not None and health.observed_max == pytest.approx(float(obs.max_val))
