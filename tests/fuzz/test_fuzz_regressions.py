"""Named regression tests for the bugs the fuzzer found (tests/fuzz), each with the model that
showed it, reduced."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.observer import HistogramObserver
from pt2q.quantizers import XNNPACKQuantizer, get_symmetric_quantization_config

from .grammar import Lambda, _scalar, _self_matmul, _softmax


def test_histogram_narrow_range_far_from_zero_bins_every_value() -> None:
    """Fuzzer: ... softmax -> bmm(x, x^T) -> + 3.0 gave values a few ulps apart; binning as
    x * k - lo * k cancelled in float32 and bincount got negative positions (RuntimeError)."""
    ulp = 2 * torch.finfo(torch.float32).eps  # float32 spacing at 3.0
    steps = torch.randint(0, 6, (1000,), generator=torch.Generator().manual_seed(0))
    x = 3.0 + steps.float() * ulp  # 6 distinct values, a range of 5 ulps
    obs = HistogramObserver()
    obs(x)
    assert float(obs.histogram.sum()) == 1000.0
    # each distinct value lands in one bin, with all its copies
    counts = sorted(c for c in obs.histogram.tolist() if c)
    assert counts == sorted(torch.bincount(steps).float().tolist())
    scale, _zero_point = obs.calculate_qparams()
    assert float(scale) > 0


def test_softmax_bmm_plus_scalar_model_converts() -> None:
    """The fuzzed model, reduced: near-constant attention scores shifted by a scalar."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(2, 3),
        Lambda("softmax", _softmax),
        Lambda("bmm", _self_matmul, "bmm"),
        Lambda("add_scalar", _scalar, "add", 3.0),
    ).eval()
    x = torch.randn(2, 3, 2) * 1e-4
    gm = torch.export.export(model, (x,)).module()
    prepared = prepare_pt2e(gm, XNNPACKQuantizer().set_global(get_symmetric_quantization_config()))
    prepared(x)
    converted = convert_pt2e(prepared)
    torch.testing.assert_close(converted(x), model(x), atol=0.05, rtol=0.0)


class _Conv1dResidual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


def _lower_x86(model: nn.Module, x: torch.Tensor, quantizer: object) -> torch.Tensor:
    from pt2q.lowering import lower_pt2e_quantized_to_x86

    gm = torch.export.export(model.eval(), (x,)).module()
    prepared = prepare_pt2e(gm, quantizer)  # type: ignore[arg-type]
    prepared(x)
    converted = convert_pt2e(prepared)
    lowered = lower_pt2e_quantized_to_x86(converted, (x,))
    out = lowered(x)
    torch.testing.assert_close(out, converted(x), atol=0.1, rtol=0.0)
    return out  # type: ignore[no-any-return]


@pytest.mark.slow
def test_x86_lowering_conv1d_with_residual_add() -> None:
    """Fuzzer: start=seq, x + conv1d(3->3)(x), ... with X86InductorQuantizer (static)."""
    from pt2q.quantizers import X86InductorQuantizer, get_default_x86_inductor_quantization_config

    torch.manual_seed(0)
    quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config())
    _lower_x86(_Conv1dResidual(), torch.randn(2, 3, 11), quantizer)


@pytest.mark.slow
def test_x86_lowering_of_int8_activation_conv1d() -> None:
    """Fuzzer: start=seq, conv1d(4->2, k3), ... with XNNPACKQuantizer per-channel, lowered to x86."""
    torch.manual_seed(0)
    quantizer = XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True)
    )
    _lower_x86(nn.Conv1d(4, 2, 3, padding=1), torch.randn(2, 4, 8), quantizer)
