"""Quantizing constant weights at convert time, bit-identical to ``quantized_decomposed``.

``torch.ops.quantized_decomposed.quantize_per_channel`` / ``quantize_per_tensor`` allocate a new
float tensor for each of ``x * (1 / scale)``, ``round``, ``+ zero_point`` and ``clamp`` before the
integer cast: on an LLM's weights that is four fresh weight-sized buffers (page faults included)
per weight and most of convert's time. The functions here run the same operations in the same
order and float32 precision on one buffer, in place, so the integers are identical::

    y = x * (1 / scale)   # the only float allocation
    y.round_()            # half to even, as torch.round
    y.add_(zero_point)
    y.clamp_(quant_min, quant_max)
    y.to(dtype)

``FAST_QUANTIZE`` maps each op overload to its in-place twin; ``pt2q.constants`` uses it when
it evaluates a constant quantize node. Anything else (bf16 inputs, odd dtypes) takes the op.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["FAST_QUANTIZE"]

qd = torch.ops.quantized_decomposed


def _finish(
    y: torch.Tensor, zero_point: Any, quant_min: int, quant_max: int, dtype: torch.dtype
) -> torch.Tensor:
    y.round_()
    zero = not bool(zero_point.any()) if isinstance(zero_point, torch.Tensor) else zero_point == 0
    if not zero:  # symmetric weights: + 0 changes no integer (-0.0 and 0.0 both cast to 0)
        y.add_(zero_point)
    y.clamp_(quant_min, quant_max)
    return y.to(dtype)


def _quantize_per_channel(
    x: torch.Tensor,
    scales: torch.Tensor,
    zero_points: torch.Tensor,
    axis: int,
    quant_min: int,
    quant_max: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    if x.dtype != torch.float32 or not 0 <= axis < x.dim():
        return qd.quantize_per_channel.default(
            x, scales, zero_points, axis, quant_min, quant_max, dtype
        )
    shape = [1] * x.dim()
    shape[axis] = scales.shape[0]  # (1, .., C, .., 1): broadcast along `axis`
    y = x * (1.0 / scales.view(shape))
    return _finish(y, zero_points.view(shape), quant_min, quant_max, dtype)


def _quantize_per_tensor(
    x: torch.Tensor,
    scale: float,
    zero_point: int,
    quant_min: int,
    quant_max: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    if x.dtype != torch.float32:
        return qd.quantize_per_tensor.default(x, scale, zero_point, quant_min, quant_max, dtype)
    y = x * (1.0 / scale)
    return _finish(y, zero_point, quant_min, quant_max, dtype)


FAST_QUANTIZE: dict[Any, Callable[..., torch.Tensor]] = {
    qd.quantize_per_channel.default: _quantize_per_channel,
    qd.quantize_per_tensor.default: _quantize_per_tensor,
}
