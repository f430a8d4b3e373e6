"""The observer contract (pt2q/observer/base.py) and the qparam formulas, for every observer and
fake-quantizer kind: keyword construction + with_args chaining, node_name in NaN/inf and
uncalibrated errors, affine / symmetric / reduce_range / eps / per-channel / float qparams."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from pt2q.fake_quantize import FakeQuantize, FusedMovingAvgObsFakeQuantize
from pt2q.observer import (
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    NonFiniteObservationError,
    ObserverNotCalibratedError,
    PerChannelMinMaxObserver,
)
from pt2q.observer.qparams import DEFAULT_EPS

PER_TENSOR = {
    "minmax": MinMaxObserver,
    "moving_average": MovingAverageMinMaxObserver,
    "histogram": HistogramObserver,
    "fake_quantize": FakeQuantize,
    "fused_fake_quantize": FusedMovingAvgObsFakeQuantize.with_args(quant_min=None, quant_max=None),
}
PER_CHANNEL = {
    "per_channel_minmax": PerChannelMinMaxObserver,
    "per_channel_moving_average": MovingAveragePerChannelMinMaxObserver,
    "per_channel_fake_quantize": FakeQuantize.with_args(
        observer=MovingAveragePerChannelMinMaxObserver, qscheme=torch.per_channel_affine
    ),
}
ALL = {**PER_TENSOR, **PER_CHANNEL}


@pytest.mark.parametrize("name", list(ALL))
@pytest.mark.parametrize(
    ("bad", "counts"), [(float("nan"), "1 NaN, 0 inf"), (float("-inf"), "0 NaN, 1 inf")]
)
def test_non_finite_error_names_node(name: str, bad: float, counts: str) -> None:
    obs = ALL[name]()
    obs.node_name = "add_7"
    x = torch.ones(2, 3)
    x[1, 2] = bad
    with pytest.raises(NonFiniteObservationError, match=f"at node 'add_7'.*{counts} of 6"):
        obs(x)


@pytest.mark.parametrize("name", list(ALL))
def test_uncalibrated_error_names_node(name: str) -> None:
    obs = ALL[name]()
    obs.node_name = "linear_2"
    assert not obs.has_observed
    with pytest.raises(ObserverNotCalibratedError, match="'linear_2' has not observed any data"):
        obs.calculate_qparams()
    obs(torch.randn(2, 3))
    assert obs.has_observed


@pytest.mark.parametrize("name", list(ALL))
def test_with_args_chains_later_values_win(name: str) -> None:
    ctr = ALL[name].with_args(dtype=torch.int8, quant_min=-10, quant_max=10)
    obs = ctr.with_args(quant_min=-100, quant_max=100)()
    assert (obs.dtype, obs.quant_min, obs.quant_max) == (torch.int8, -100, 100)


# per-tensor data on [-1, 3]: (dtype, qscheme, reduce_range) -> (scale, zero_point)
FORMULAS: dict[str, tuple[dict[str, Any], float, int]] = {
    # scale = (3 - -1) / 255; zp = 0 - round(-1 / scale) = round(63.75) = 64
    "affine_uint8": ({"dtype": torch.uint8}, 4 / 255, 64),
    # zp = -128 - round(-63.75) = -64
    "affine_int8": ({"dtype": torch.int8}, 4 / 255, -64),
    # scale = max(1, 3) / (255 / 2); zp 128 for unsigned
    "symmetric_uint8": (
        {"dtype": torch.uint8, "qscheme": torch.per_tensor_symmetric},
        3 / 127.5,
        128,
    ),
    "symmetric_int8": ({"dtype": torch.int8, "qscheme": torch.per_tensor_symmetric}, 3 / 127.5, 0),
    # reduce_range: [0, 127]; scale = 4 / 127; zp = round(31.75) = 32
    "reduce_range_uint8": ({"dtype": torch.uint8, "reduce_range": True}, 4 / 127, 32),
    # user range [0, 15]: scale 4 / 15; zp round(3.75) = 4
    "custom_range": ({"dtype": torch.uint8, "quant_min": 0, "quant_max": 15}, 4 / 15, 4),
}


@pytest.mark.parametrize("name", ["minmax", "moving_average", "fake_quantize"])
@pytest.mark.parametrize("formula", list(FORMULAS))
def test_per_tensor_formulas(name: str, formula: str) -> None:
    kwargs, scale, zp = FORMULAS[formula]
    obs = ALL[name](**kwargs)
    obs(torch.tensor([[-1.0, 0.5], [2.0, 3.0]]))
    s, z = obs.calculate_qparams()
    assert s.item() == pytest.approx(scale, rel=1e-6)
    assert z.item() == zp and z.dtype == torch.int32


@pytest.mark.parametrize("name", ["minmax", "moving_average", "histogram"])
def test_all_zero_input_gives_eps_scale(name: str) -> None:
    obs = ALL[name](eps=1e-4)
    obs(torch.zeros(5))
    s, z = obs.calculate_qparams()
    assert (s.item(), z.item()) == (pytest.approx(1e-4), 0)
    default = ALL[name]()
    default(torch.zeros(5))
    assert default.calculate_qparams()[0].item() == pytest.approx(DEFAULT_EPS)


@pytest.mark.parametrize("name", list(PER_CHANNEL))
def test_per_channel_formulas(name: str) -> None:
    obs = ALL[name](ch_axis=1, dtype=torch.int8, qscheme=torch.per_channel_symmetric)
    x = torch.tensor([[-1.0, 0.5, 0.0], [2.0, 4.0, 0.0]])  # (N, C=3); channel 2 all zero
    obs(x)
    s, z = obs.calculate_qparams()
    # scale_c = max|x_c| / 127.5 (eps for the all-zero channel); zero points 0
    torch.testing.assert_close(s.reshape(-1), torch.tensor([2 / 127.5, 4 / 127.5, DEFAULT_EPS]))
    assert z.reshape(-1).tolist() == [0, 0, 0]


def test_per_channel_float_qparams() -> None:
    obs = PerChannelMinMaxObserver(ch_axis=0, qscheme=torch.per_channel_affine_float_qparams)
    obs(torch.tensor([[1.0, 3.0], [5.0, 5.0]]))  # row 1 is constant
    s, z = obs.calculate_qparams()
    # row 0: scale 2/255, zp -1/scale = -127.5 (float); row 1: scale 1.0 (range <= eps), zp -5
    torch.testing.assert_close(s, torch.tensor([2 / 255, 1.0]))
    torch.testing.assert_close(z, torch.tensor([-127.5, -5.0]))
    assert z.dtype == torch.float32


def test_reduce_range_halves_a_user_given_range_too() -> None:
    from pt2q.observer import MinMaxObserver

    obs = MinMaxObserver(dtype=torch.uint8, quant_min=0, quant_max=255, reduce_range=True)
    assert (obs.quant_min, obs.quant_max) == (0, 127)
    obs = MinMaxObserver(dtype=torch.int8, quant_min=-128, quant_max=127, reduce_range=True)
    assert (obs.quant_min, obs.quant_max) == (-64, 63)
