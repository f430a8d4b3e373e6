"""pt2q.convert.weight_quantize: convert's in-place weight quantization gives exactly the
integers of torch's quantized_decomposed ops (rounding ties, zero points, clamping, any axis)."""

from __future__ import annotations

import pytest
import torch
import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers quantized_decomposed)

from pt2q.convert.weight_quantize import FAST_QUANTIZE

qd = torch.ops.quantized_decomposed


def _weight(shape: tuple[int, ...], scale: torch.Tensor | float) -> torch.Tensor:
    """Random values plus exact half-step ties and values far outside the range (clamped)."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(shape, generator=gen) * 0.2
    ties = (torch.randint(-140, 140, shape, generator=gen).float() + 0.5) * scale
    pick = torch.rand(shape, generator=gen) < 0.3
    return torch.where(pick, ties.float(), w)


CHANNEL_CASES = {
    "int8_symmetric_axis0": (0, torch.int8, -127, 127, False),
    "int8_affine_axis1": (1, torch.int8, -128, 127, True),
    "uint8_affine_axis0": (0, torch.uint8, 0, 255, True),
    "int8_axis2_conv1d": (2, torch.int8, -128, 127, True),
}


@pytest.mark.parametrize("case", CHANNEL_CASES.values(), ids=CHANNEL_CASES.keys())
def test_per_channel_matches_decomposed_op(case: tuple) -> None:
    axis, dtype, qmin, qmax, affine = case
    shape = (16, 12, 5)
    gen = torch.Generator().manual_seed(1)
    scales = torch.rand(shape[axis], generator=gen) * 0.02 + 1e-3
    zps = (
        torch.randint(qmin // 2, qmax // 2 + 1, (shape[axis],), generator=gen)
        if affine
        else torch.zeros(shape[axis], dtype=torch.int64)
    )
    view = [1] * 3
    view[axis] = -1
    x = _weight(shape, scales.view(view))
    expected = qd.quantize_per_channel.default(x, scales, zps, axis, qmin, qmax, dtype)
    actual = FAST_QUANTIZE[qd.quantize_per_channel.default](x, scales, zps, axis, qmin, qmax, dtype)
    assert actual.dtype == dtype
    assert torch.equal(actual, expected)


@pytest.mark.parametrize(
    "dtype,qmin,qmax,zp", [(torch.int8, -128, 127, 3), (torch.uint8, 0, 255, 128)]
)
def test_per_tensor_matches_decomposed_op(
    dtype: torch.dtype, qmin: int, qmax: int, zp: int
) -> None:
    scale = 0.0123
    x = _weight((33, 17), scale)
    expected = qd.quantize_per_tensor.default(x, scale, zp, qmin, qmax, dtype)
    actual = FAST_QUANTIZE[qd.quantize_per_tensor.default](x, scale, zp, qmin, qmax, dtype)
    assert torch.equal(actual, expected)


def test_bf16_weights_take_the_op() -> None:
    x = _weight((8, 4), 0.01).bfloat16()
    scales, zps = torch.full((8,), 0.01), torch.zeros(8, dtype=torch.int64)
    expected = qd.quantize_per_channel.default(x, scales, zps, 0, -127, 127, torch.int8)
    actual = FAST_QUANTIZE[qd.quantize_per_channel.default](
        x, scales, zps, 0, -127, 127, torch.int8
    )
    assert torch.equal(actual, expected)


def test_input_weight_is_not_written() -> None:
    x = _weight((8, 4), 0.01)
    before = x.clone()
    FAST_QUANTIZE[qd.quantize_per_tensor.default](x, 0.01, 0, -128, 127, torch.int8)
    assert torch.equal(x, before)
