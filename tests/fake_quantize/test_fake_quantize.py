"""FakeQuantize / FusedMovingAvgObsFakeQuantize: numerics, switches, contract, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchao_peer import register, result

from pt2q.fake_quantize import (
    FakeQuantize,
    FixedQParamsFakeQuantize,
    FusedMovingAvgObsFakeQuantize,
    disable_fake_quant,
    disable_observer,
    enable_fake_quant,
    enable_observer,
)
from pt2q.observer import (
    MinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    NonFiniteObservationError,
    ObserverNotCalibratedError,
    PerChannelMinMaxObserver,
)
from pt2q.tolerances import QDQ_VS_HAND_REFERENCE_STEPS, assert_within_steps


def _hand_qdq(
    x: torch.Tensor, scale: torch.Tensor, zp: torch.Tensor, qmin: int, qmax: int
) -> torch.Tensor:
    """(clamp(round(x / s) + zp, qmin, qmax) - zp) * s, computed in float64."""
    s, z = scale.double(), zp.double()
    return ((torch.round(x.double() / s) + z).clamp(qmin, qmax) - z) * s


def test_per_tensor_matches_hand_formula_and_observer() -> None:
    torch.manual_seed(0)
    fq = FakeQuantize()  # MovingAverageMinMaxObserver, uint8 [0, 255], affine
    x = torch.randn(8, 16) * 3
    y = fq(x)
    scale, zp = fq.calculate_qparams()
    assert (fq.scale.dtype, fq.zero_point.dtype, fq.scale.shape) == (
        torch.float32,
        torch.int32,
        (1,),
    )
    assert fq.scale.item() == scale.item() and fq.zero_point.item() == zp.item()
    lo, hi = x.min().item(), x.max().item()
    assert scale.item() == pytest.approx((hi - lo) / 255, rel=1e-6)
    # exact q/dq in the quantized domain; one step for float re-association (tolerances.py)
    assert_within_steps(
        y, _hand_qdq(x, scale, zp, 0, 255).float(), scale, QDQ_VS_HAND_REFERENCE_STEPS, "fq"
    )


def test_per_channel_symmetric_int8_on_axis_1() -> None:
    torch.manual_seed(0)
    fq = FakeQuantize.with_args(
        observer=MovingAveragePerChannelMinMaxObserver,
        quant_min=-128,
        quant_max=127,
        dtype=torch.int8,
        qscheme=torch.per_channel_symmetric,
        ch_axis=1,
    )()
    x = torch.randn(4, 3, 5) * torch.tensor([1.0, 10.0, 0.1]).view(1, 3, 1)  # (N, C, L)
    y = fq(x)
    assert fq.is_per_channel and fq.ch_axis == 1
    assert fq.scale.shape == (3,) and fq.zero_point.tolist() == [0, 0, 0]
    amax = x.abs().amax(dim=(0, 2))
    torch.testing.assert_close(fq.scale, amax / 127.5)
    ref = _hand_qdq(x, fq.scale.view(1, 3, 1), fq.zero_point.view(1, 3, 1), -128, 127)
    assert_within_steps(y, ref.float(), fq.scale.view(1, 3, 1), QDQ_VS_HAND_REFERENCE_STEPS, "pc")


def test_float_qparams_per_channel_keeps_float_zero_point() -> None:
    fq = FakeQuantize(
        observer=PerChannelMinMaxObserver,
        qscheme=torch.per_channel_affine_float_qparams,
        ch_axis=0,
    )
    x = torch.tensor([[1.0, 3.0], [-2.0, 2.0]])
    y = fq(x)
    assert fq.zero_point.dtype == torch.float32
    # row 0: scale (3 - 1) / 255, zero_point -1 / scale; row 1: scale 4 / 255, zp 2 / scale
    torch.testing.assert_close(fq.scale, torch.tensor([2 / 255, 4 / 255]))
    torch.testing.assert_close(fq.zero_point, torch.tensor([-127.5, 127.5]))
    torch.testing.assert_close(y, x, rtol=0, atol=4 / 255)


def test_switches_and_model_apply_helpers() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), FakeQuantize(), nn.ReLU(), FakeQuantize())
    x = torch.randn(2, 4)
    model(x)
    fq = model[1]
    frozen = fq.scale.clone()

    model.apply(disable_observer)
    model(x * 100)  # a much wider batch: qparams stay frozen
    assert torch.equal(fq.scale, frozen)
    assert not fq.is_observer_enabled and fq.is_fake_quant_enabled

    model.apply(disable_fake_quant)
    y = torch.randn(3, 4)
    assert torch.equal(fq(y), y)  # identity when both are off

    model.apply(enable_observer)
    model.apply(enable_fake_quant)
    model(x * 100)
    assert fq.scale.item() > frozen.item()
    assert fq.observer_enabled.dtype == torch.uint8 and fq.observer_enabled.tolist() == [1]


def test_observer_on_fake_quant_off_still_collects() -> None:
    fq = FakeQuantize()
    fq.disable_fake_quant()
    x = torch.tensor([-1.0, 0.3333, 2.0])
    assert torch.equal(fq(x), x)
    assert fq.has_observed and fq.scale.item() == pytest.approx(3 / 255)


def test_straight_through_gradient() -> None:
    fq = FakeQuantize(observer=MinMaxObserver)
    fq(torch.tensor([-1.0, 1.0]))  # range [-1, 1]
    fq.disable_observer()
    x = torch.tensor([-3.0, -0.5, 0.25, 0.9, 2.0], requires_grad=True)
    fq(x).sum().backward()
    assert x.grad is not None
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]  # clipped values get no gradient


def test_contract_node_name_nan_and_uncalibrated() -> None:
    fq = FakeQuantize()
    fq.node_name = "conv2d_1"
    assert fq.activation_post_process.node_name == "conv2d_1"
    assert not fq.has_observed
    with pytest.raises(ObserverNotCalibratedError, match="node 'conv2d_1' has not observed"):
        fq.calculate_qparams()
    with pytest.raises(NonFiniteObservationError, match="node 'conv2d_1'.*1 NaN, 0 inf"):
        fq(torch.tensor([0.0, float("nan")]))


def test_with_args_chain_and_state_dict_round_trip() -> None:
    ctr = FakeQuantize.with_args(observer=MovingAveragePerChannelMinMaxObserver).with_args(
        quant_min=-128,
        quant_max=127,
        dtype=torch.int8,
        qscheme=torch.per_channel_symmetric,
        ch_axis=0,
        averaging_constant=0.5,
    )
    fq = ctr()
    assert fq.activation_post_process.averaging_constant == 0.5
    fq(torch.randn(3, 7))
    fresh = ctr()
    fresh.load_state_dict(fq.state_dict())  # per-channel buffers are resized on load
    assert torch.equal(fresh.scale, fq.scale) and torch.equal(fresh.zero_point, fq.zero_point)
    x = torch.randn(3, 7)
    fresh.disable_observer()
    fq.disable_observer()
    assert torch.equal(fresh(x), fq(x))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"quant_min": 10, "quant_max": 5}, ValueError, r"quant_min \(10\) must be <= quant_max"),
        (
            {"quant_min": -1, "quant_max": 255},
            ValueError,
            r"\[-1, 255\] is outside the range of dtype torch.uint8 \[0, 255\]",
        ),
        ({"observer": nn.Identity}, TypeError, "must build a pt2q observer.*got Identity"),
    ],
    ids=["min_above_max", "outside_dtype", "not_an_observer"],
)
def test_bad_configuration(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        FakeQuantize(**kwargs)


def test_fused_uses_observer_formulas() -> None:
    torch.manual_seed(0)
    fq = FusedMovingAvgObsFakeQuantize(
        observer=MovingAveragePerChannelMinMaxObserver,
        quant_min=-128,
        quant_max=127,
        dtype=torch.int8,
        qscheme=torch.per_channel_symmetric,
        ch_axis=0,
    )
    x = torch.stack([torch.randn(16), torch.rand(16) + 0.5])  # channel 1 is all positive
    fq(x)
    scale, zp = fq.calculate_qparams()
    # torch.fused_moving_avg_obs_fake_quant would give channel 1 zero_point -128; pt2q trains on
    # the symmetric qparams convert emits.
    assert torch.equal(fq.scale, scale) and fq.zero_point.tolist() == [0, 0] == zp.tolist()
    assert fq.observer_enabled.dtype == torch.long
    assert (fq.quant_min, fq.quant_max) == (-128, 127)


def test_fused_defaults_and_observer_check() -> None:
    fq = FusedMovingAvgObsFakeQuantize()
    assert (fq.quant_min, fq.quant_max, fq.dtype) == (0, 255, torch.uint8)
    with pytest.raises(TypeError, match="must be MovingAverageMinMaxObserver.*got MinMaxObserver"):
        FusedMovingAvgObsFakeQuantize(observer=MinMaxObserver)


def test_apply_helpers_reach_fixed_qparams() -> None:
    model = nn.Sequential(FixedQParamsFakeQuantize(scale=1 / 256, zero_point=0), FakeQuantize())
    model.apply(disable_fake_quant)
    assert not model[0].is_fake_quant_enabled and not model[1].is_fake_quant_enabled


_TORCHAO_SIDE_BY_SIDE = """
from torchao.quantization.pt2e.fake_quantize import FakeQuantize
from torchao.quantization.pt2e.observer import MovingAveragePerChannelMinMaxObserver
torch.manual_seed(0)
ref = FakeQuantize(observer=MovingAveragePerChannelMinMaxObserver, dtype=torch.qint8,
                   qscheme=torch.per_channel_affine, quant_min=-128, quant_max=127, ch_axis=1,
                   averaging_constant=0.1)
outputs = [tensor_list(ref(torch.randn(2, 3, 8) * (i + 1))) for i in range(4)]
result = [outputs, tensor_list(ref.scale), ref.zero_point.tolist()]
"""
register("fake_quantize_side_by_side", _TORCHAO_SIDE_BY_SIDE)


def test_matches_torchao_side_by_side() -> None:
    # torchao runs in a subprocess (it registers global Inductor passes on import)
    ref_outputs, ref_scale, ref_zero_point = result("fake_quantize_side_by_side")
    torch.manual_seed(0)
    kwargs = {"quant_min": -128, "quant_max": 127, "ch_axis": 1, "averaging_constant": 0.1}
    ours = FakeQuantize(
        observer=MovingAveragePerChannelMinMaxObserver,
        dtype=torch.int8,
        qscheme=torch.per_channel_affine,
        **kwargs,
    )
    for i in range(4):
        x = torch.randn(2, 3, 8) * (i + 1)  # (N, C, L)
        assert ours(x).double().tolist() == ref_outputs[i]  # bit-identical
    assert ours.scale.double().tolist() == ref_scale
    assert ours.zero_point.tolist() == ref_zero_point
