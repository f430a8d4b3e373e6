"""The qparam formulas: (min, max) statistics -> (scale, zero_point).

These are the formulas of torch's quantization docs (and of ``quantized_decomposed``'s users):

* affine:    scale = (max(max_val, 0) - min(min_val, 0)) / (qmax - qmin), clamped below by eps;
             zero_point = clamp(qmin - round(min(min_val, 0) / scale), qmin, qmax)
* symmetric: scale = max(-min(min_val, 0), max(max_val, 0)) / ((qmax - qmin) / 2), clamped by eps;
             zero_point = (qmin + qmax + 1) // 2 for unsigned dtypes (128 for uint8), else 0
* per-channel float qparams (embeddings): scale = (max - min) / (qmax - qmin) (1.0 where it is
             not above eps), zero_point = -min / scale as float
* reduce_range halves the integer range when the user did not give quant_min/quant_max.

``round`` is torch.round (half to even).
"""

from __future__ import annotations

import torch

__all__ = ["default_quant_range", "calculate_qparams", "DEFAULT_EPS"]

DEFAULT_EPS = torch.finfo(torch.float32).eps

_SYMMETRIC = (torch.per_tensor_symmetric, torch.per_channel_symmetric)


def default_quant_range(
    dtype: torch.dtype,
    quant_min: int | None,
    quant_max: int | None,
    reduce_range: bool = False,
) -> tuple[int, int]:
    """The integer range an observer uses: the user's bounds where given, else the dtype's;
    ``reduce_range`` halves the result either way, as torch's observers do (uint8 [0, 255] ->
    [0, 127], int8 [-128, 127] -> [-64, 63])."""
    info = torch.iinfo(dtype)
    lo = int(info.min) if quant_min is None else int(quant_min)
    hi = int(info.max) if quant_max is None else int(quant_max)
    if reduce_range:
        lo, hi = lo // 2, hi // 2
    return lo, hi


def calculate_qparams(
    min_val: torch.Tensor,
    max_val: torch.Tensor,
    quant_min: int,
    quant_max: int,
    dtype: torch.dtype,
    qscheme: torch.qscheme,
    eps: float = DEFAULT_EPS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale float32, zero_point int32) for per-tensor (0-d stats) or per-channel (1-d) stats.

    Float-qparams per-channel returns a float zero_point. Raises if min > max anywhere.
    """
    if min_val.numel() > 0 and bool((min_val > max_val).any()):
        raise ValueError(f"calculate_qparams: min_val {min_val} is greater than max_val {max_val}")
    device = min_val.device
    if qscheme == torch.per_channel_affine_float_qparams:
        scale = (max_val - min_val).float() / float(quant_max - quant_min)
        scale = torch.where(scale > eps, scale, torch.ones_like(scale))
        zero_point = -1 * min_val.float() / scale
        return scale, zero_point
    min_neg = torch.minimum(min_val, torch.zeros_like(min_val)).float()
    max_pos = torch.maximum(max_val, torch.zeros_like(max_val)).float()
    eps_t = torch.tensor(eps, dtype=torch.float32, device=device)
    if qscheme in _SYMMETRIC:
        max_pos = torch.maximum(-min_neg, max_pos)
        scale = max_pos / (float(quant_max - quant_min) / 2)
        scale = torch.maximum(scale, eps_t)
        unsigned = not torch.iinfo(dtype).min < 0 if not dtype.is_floating_point else False
        zp_value = (quant_min + quant_max + 1) // 2 if unsigned else 0
        zero_point = torch.full_like(scale, zp_value, dtype=torch.int32)
    else:
        scale = (max_pos - min_neg) / float(quant_max - quant_min)
        scale = torch.maximum(scale, eps_t)
        zero_point = quant_min - torch.round(min_neg / scale).to(torch.int32)
        zero_point = torch.clamp(zero_point, quant_min, quant_max)
    return scale.to(torch.float32), zero_point.to(torch.int32)
