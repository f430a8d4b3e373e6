"""FixedQParamsFakeQuantize: fixed scale/zero point, both construction styles, errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from pt2q.fake_quantize import FixedQParamsFakeQuantize
from pt2q.observer import NonFiniteObservationError


def test_sigmoid_output_exact() -> None:
    fq = FixedQParamsFakeQuantize(scale=1.0 / 256, zero_point=0)
    x = torch.sigmoid(torch.linspace(-8, 8, 101))
    y = fq(x)
    # q = clamp(round(x * 256), 0, 255); exact in float32 since 1/256 is a power of two
    assert torch.equal(y, torch.clamp(torch.round(x * 256), 0, 255) / 256)
    scale, zp = fq.calculate_qparams()
    assert (scale.tolist(), zp.tolist(), zp.dtype) == ([1.0 / 256], [0], torch.int32)
    assert fq.has_observed  # nothing to observe: ready before any data


def test_from_spec_fields_int8_tanh() -> None:
    # the fields of FixedQParamsQuantizationSpec(dtype=int8, scale=2/256, zero_point=0, ...)
    fq = FixedQParamsFakeQuantize.with_args(
        dtype=torch.int8, scale=2.0 / 256, zero_point=0, quant_min=-128, quant_max=127
    ).with_args(qscheme=torch.per_tensor_symmetric, ch_axis=None)()
    assert (fq.quant_min, fq.quant_max, fq.qscheme) == (-128, 127, torch.per_tensor_symmetric)
    x = torch.tanh(torch.linspace(-3, 3, 61))
    expected = torch.clamp(torch.round(x * 128), -128, 127) / 128
    assert torch.equal(fq(x), expected)


class _FixedObserverStub(torch.nn.Module):
    """The attributes torchao's FixedQParamsObserver exposes."""

    def __init__(self, scale: float, zero_point: int, dtype: torch.dtype = torch.uint8) -> None:
        super().__init__()
        self.scale = torch.tensor([scale])
        self.zero_point = torch.tensor([zero_point])
        self.dtype = dtype
        self.qscheme = torch.per_tensor_affine
        self.quant_min, self.quant_max = 0, 255


def test_torchao_style_observer_argument() -> None:
    from functools import partial

    fq = FixedQParamsFakeQuantize(observer=partial(_FixedObserverStub, 1.0 / 128, 128))
    assert (fq.scale.item(), fq.zero_point.item()) == (1.0 / 128, 128)


def test_switches_and_nan_naming_node() -> None:
    fq = FixedQParamsFakeQuantize(scale=0.5, zero_point=0)
    fq.node_name = "sigmoid_2"
    with pytest.raises(NonFiniteObservationError, match="node 'sigmoid_2'.*0 NaN, 1 inf"):
        fq(torch.tensor([float("inf"), 1.0]))
    fq.disable_fake_quant()
    x = torch.tensor([0.3, 0.7])
    assert torch.equal(fq(x), x)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, TypeError, "needs scale and zero_point"),
        ({"scale": 0.0, "zero_point": 0}, ValueError, "scale must be a finite float > 0, got 0.0"),
        ({"scale": 0.1, "zero_point": 300}, ValueError, r"zero_point=300 is outside \[0, 255\]"),
        (
            {"scale": 0.1, "zero_point": 0, "qscheme": torch.per_channel_affine},
            ValueError,
            "qscheme must be per-tensor",
        ),
        ({"scale": 0.1, "zero_point": 0, "is_dynamic": True}, ValueError, "is_dynamic=True"),
        ({"scale": 0.1, "zero_point": 0, "bins": 3}, TypeError, r"unexpected arguments \['bins'\]"),
    ],
    ids=["missing", "zero_scale", "zp_out_of_range", "per_channel", "dynamic", "unknown_kwarg"],
)
def test_bad_configuration(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        FixedQParamsFakeQuantize(**kwargs)
