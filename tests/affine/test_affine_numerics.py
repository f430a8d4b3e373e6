"""Affine primitives, observers and fake-quant against the seed docs' formulas written by hand
(Q = clamp(round(x / s) + z, Qmin, Qmax), x' = (Q - z) * s; symmetric s = 2 max(|x_min|, x_max)
/ (Qmax - Qmin), z = 0 for signed; affine s = (x_max - x_min) / (Qmax - Qmin), z = Qmin -
round(x_min / s)), per block of each granularity."""

from __future__ import annotations

import pytest
import torch

from pt2q.affine import (
    MappingType,
    PerAxis,
    PerBlock,
    PerGroup,
    PerRow,
    PerTensor,
    PerToken,
    TorchAODType,
    ZeroPointDomain,
    choose_qparams_affine,
    dequantize_affine,
    fake_quantize_affine,
    get_block_size,
    quantize_affine,
)
from pt2q.fake_quantize import AffineFakeQuantize
from pt2q.observer import (
    AffineQuantizedMinMaxObserver,
    AffineQuantizedMovingAverageMinMaxObserver,
    AffineQuantizedPlaceholderObserver,
    ObserverNotCalibratedError,
)

qd = torch.ops.quantized_decomposed


def _seed_symmetric(x_min: torch.Tensor, x_max: torch.Tensor, qmin: int, qmax: int) -> torch.Tensor:
    return 2 * torch.maximum(x_min.clamp(max=0).abs(), x_max.clamp(min=0)) / (qmax - qmin)


def _seed_affine(
    x_min: torch.Tensor, x_max: torch.Tensor, qmin: int, qmax: int
) -> tuple[torch.Tensor, torch.Tensor]:
    lo, hi = x_min.clamp(max=0), x_max.clamp(min=0)
    s = (hi - lo) / (qmax - qmin)
    return s, torch.clamp(qmin - torch.round(lo / s), qmin, qmax)


GRANULARITIES = {
    "tensor": (PerTensor(), lambda x: x.reshape(1, -1)),
    "axis0": (PerAxis(0), lambda x: x.reshape(x.shape[0], -1)),
    "group16": (PerGroup(16), lambda x: x.reshape(-1, 16)),
    "token": (PerToken(), lambda x: x.reshape(-1, x.shape[-1])),
    "row": (PerRow(), lambda x: x.reshape(-1, x.shape[-1])),
}


@pytest.mark.parametrize("name", GRANULARITIES.keys())
@pytest.mark.parametrize("mapping", ["symmetric", "asymmetric"])
def test_qparams_and_roundtrip_follow_seed_formulas(name: str, mapping: str) -> None:
    torch.manual_seed(0)
    granularity, rows = GRANULARITIES[name]
    x = torch.randn(4, 3, 32) * 2 + 0.3
    block = get_block_size(x.shape, granularity)
    qmin, qmax = (-8, 7) if mapping == "symmetric" else (0, 15)
    mt = MappingType.SYMMETRIC if mapping == "symmetric" else MappingType.ASYMMETRIC
    s, z = choose_qparams_affine(x, mt, block, torch.int8, qmin, qmax)
    r = rows(x)  # one row per block
    x_min, x_max = r.amin(1), r.amax(1)
    if mapping == "symmetric":
        hand_s, hand_z = _seed_symmetric(x_min, x_max, qmin, qmax), torch.zeros(r.shape[0])
    else:
        hand_s, hand_z = _seed_affine(x_min, x_max, qmin, qmax)
    assert z is not None
    torch.testing.assert_close(s.reshape(-1), hand_s, rtol=1e-6, atol=0)
    assert torch.equal(z.reshape(-1), hand_z)
    q = quantize_affine(x, block, s, z, torch.int8, qmin, qmax)
    # x * (1 / s), as the quantized_decomposed ops compute it
    hand_q = torch.clamp(torch.round(r * (1.0 / s.reshape(-1, 1))) + z.reshape(-1, 1), qmin, qmax)
    assert q.dtype == torch.int8 and torch.equal(q.reshape(r.shape).float(), hand_q)
    dq = dequantize_affine(q, block, s, z, torch.int8, qmin, qmax)
    hand_dq = (hand_q - z.reshape(-1, 1)) * s.reshape(-1, 1)
    assert torch.equal(dq.reshape(r.shape), hand_dq)


@pytest.mark.parametrize(
    ("target", "storage", "lo", "hi"),
    [
        (torch.int4, torch.int8, -8, 7),
        (TorchAODType.INT4, torch.int8, -8, 7),
        (torch.uint4, torch.uint8, 0, 15),
        (torch.int2, torch.int8, -2, 1),
    ],
    ids=["int4", "aod_int4", "uint4", "int2"],
)
def test_sub_byte_targets_live_in_bytes(
    target: object, storage: torch.dtype, lo: int, hi: int
) -> None:
    x = torch.randn(8, 64) * 5
    block = get_block_size(x.shape, PerGroup(32))
    mt = MappingType.SYMMETRIC if lo < 0 else MappingType.ASYMMETRIC
    s, z = choose_qparams_affine(x, mt, block, target)  # type: ignore[arg-type]
    q = quantize_affine(x, block, s, z, target)  # type: ignore[arg-type]
    assert q.dtype == storage and int(q.min()) == lo and int(q.max()) <= hi


def test_zero_point_domains_and_no_clipping_mapping() -> None:
    x = torch.tensor([[-3.0, -1.0, 0.5, 6.0]])
    block = (1, 4)
    # FLOAT: zero point = min + scale * mid; q = round((x - (zp - s * mid)) / s)
    s, z = choose_qparams_affine(
        x, MappingType.ASYMMETRIC, block, torch.uint8, 0, 15,
        preserve_zero=False, zero_point_domain=ZeroPointDomain.FLOAT,
    )  # fmt: skip
    assert z is not None
    assert torch.allclose(s, torch.tensor([[9.0 / 15]])) and torch.allclose(z, -3 + s * 8)
    q = quantize_affine(x, block, s, z, torch.uint8, 0, 15, ZeroPointDomain.FLOAT)
    assert q.tolist() == [[0, 3, 6, 15]]
    dq = dequantize_affine(q, block, s, z, torch.uint8, 0, 15, ZeroPointDomain.FLOAT)
    torch.testing.assert_close(dq, (q.float() - 8) * s + z)
    # NONE: no zero point at all
    s, z = choose_qparams_affine(
        x, MappingType.ASYMMETRIC, block, torch.int8, zero_point_domain=ZeroPointDomain.NONE
    )
    assert z is None
    q = quantize_affine(x, block, s, None, torch.int8, zero_point_domain=ZeroPointDomain.NONE)
    assert torch.equal(q.float(), torch.round(x / s).clamp(-128, 127))
    # SYMMETRIC_NO_CLIPPING_ERR: s = max(min / qmin, max / qmax): neither end clips
    s, _ = choose_qparams_affine(x, MappingType.SYMMETRIC_NO_CLIPPING_ERR, block, torch.int8, -8, 7)
    assert torch.allclose(s, torch.tensor([[6.0 / 7]]))


def test_fake_quantize_gradient_is_straight_through_inside_range() -> None:
    x = torch.tensor([[-20.0, -1.0, 0.2, 3.0]], requires_grad=True)
    s, z = torch.tensor([[0.5]]), torch.tensor([[0]])
    y = fake_quantize_affine(x, (1, 4), s, z, torch.int8, -8, 7)
    y.sum().backward()
    assert y.tolist() == [[-4.0, -1.0, 0.0, 3.0]]
    assert x.grad is not None and x.grad.tolist() == [[0.0, 1.0, 1.0, 1.0]]


def test_observers_min_max_moving_average_and_state_dict() -> None:
    a, b = torch.randn(4, 32), torch.randn(4, 32) * 3
    mm = AffineQuantizedMinMaxObserver(MappingType.ASYMMETRIC, torch.uint8, PerGroup(16))
    ma = AffineQuantizedMovingAverageMinMaxObserver(
        MappingType.ASYMMETRIC, torch.uint8, PerGroup(16), averaging_constant=0.25
    )
    with pytest.raises(ObserverNotCalibratedError, match="no statistics"):
        mm.calculate_qparams()
    for batch in (a, b):
        mm(batch)
        ma(batch)
    ga, gb = a.reshape(4, 2, 16), b.reshape(4, 2, 16)
    assert torch.equal(mm.min_val, torch.minimum(ga.amin(-1), gb.amin(-1)))
    expected_min = ga.amin(-1) + 0.25 * (gb.amin(-1) - ga.amin(-1))
    torch.testing.assert_close(ma.min_val, expected_min)
    fresh = AffineQuantizedMinMaxObserver(MappingType.ASYMMETRIC, torch.uint8, PerGroup(16))
    fresh.load_state_dict(mm.state_dict())
    for mine, theirs in zip(fresh.calculate_qparams(), mm.calculate_qparams(), strict=True):
        assert theirs is not None and torch.equal(mine, theirs)  # type: ignore[arg-type]


def test_observer_argument_errors() -> None:
    with pytest.raises(TypeError, match="granularity must be a Granularity"):
        AffineQuantizedMinMaxObserver(MappingType.SYMMETRIC, torch.int8, "per_group")
    with pytest.raises(ValueError, match="disagree"):
        AffineQuantizedMinMaxObserver(
            MappingType.SYMMETRIC, torch.int8, PerTensor(), dtype=torch.uint8
        )
    with pytest.raises(ValueError, match="outside the range"):
        AffineQuantizedMinMaxObserver(MappingType.SYMMETRIC, torch.int4, PerTensor(), quant_max=9)
    with pytest.raises(ValueError, match="dynamic specs only"):
        AffineQuantizedPlaceholderObserver(
            MappingType.ASYMMETRIC, torch.int8, PerToken(), is_dynamic=False
        )
    with pytest.raises(ValueError, match="multiple of the group size"):
        get_block_size((4, 48), PerGroup(32))
    with pytest.raises(ValueError, match="whole blocks"):
        get_block_size((4, 48), PerBlock((3, 32)))
    with pytest.raises(ValueError, match="group_size must be >= 1"):
        PerGroup(0)


def test_affine_fake_quantize_static_and_dynamic() -> None:
    torch.manual_seed(0)
    w = torch.randn(8, 64)
    fq = AffineFakeQuantize(
        mapping_type=MappingType.SYMMETRIC, target_dtype=torch.int4, granularity=PerGroup(32)
    )
    y = fq(w)
    s, z = choose_qparams_affine(w, MappingType.SYMMETRIC, (1, 32), torch.int4)
    assert z is not None
    assert fq.scale.shape == (8, 2) and torch.equal(fq.scale, s)
    hand = dequantize_affine(
        quantize_affine(w, (1, 32), s, z, torch.int4), (1, 32), s, z, torch.int4
    )
    assert torch.equal(y, hand)
    fq.disable_observer()
    frozen = fq.scale.clone()
    fq(w * 10)
    assert torch.equal(fq.scale, frozen)  # qparams frozen once the observer is off
    # dynamic per token: exactly the quantized_decomposed ops convert emits
    x = torch.randn(2, 5, 64) * 3
    dyn = AffineFakeQuantize(
        observer=AffineQuantizedPlaceholderObserver,
        is_dynamic=True,
        mapping_type=MappingType.ASYMMETRIC,
        target_dtype=torch.int8,
        granularity=PerToken(),
    )
    ds, dz = qd.choose_qparams_per_token_asymmetric(x, torch.int8)
    ref = qd.dequantize_per_token(
        qd.quantize_per_token(x, ds, dz, -128, 127, torch.int8), ds, dz, -128, 127,
        torch.int8, torch.float32,
    )  # fmt: skip
    torch.testing.assert_close(dyn(x), ref, rtol=0, atol=1e-6)
