"""Qparam helpers of ``torchao.quantization.pt2e.utils`` that quantizer and observer code calls.

Same names, arguments and results as torchao 0.18 (scales as float64, zero points as int64,
per-tensor results as 1-element tensors). Two deliberate differences: a bad range or dtype raises
``InvalidArgumentError`` (a ``ValueError`` and an ``AssertionError``, so code catching either
keeps working) instead of a bare ``assert``; and ``per_channel_affine_float_qparams`` keeps its
float zero points (torchao truncates them to int64).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from pt2q.errors import InvalidArgumentError

__all__ = [
    "InvalidQuantRangeError",
    "calculate_qmin_qmax",
    "check_min_max_valid",
    "determine_qparams",
    "get_qparam_dict",
    "is_per_channel",
    "is_per_tensor",
    "to_underlying_dtype",
    "validate_qmin_qmax",
]

_PER_TENSOR = (torch.per_tensor_affine, torch.per_tensor_symmetric)
_PER_CHANNEL = (
    torch.per_channel_affine,
    torch.per_channel_affine_float_qparams,
    torch.per_channel_symmetric,
)
_SYMMETRIC = (torch.per_tensor_symmetric, torch.per_channel_symmetric)

# quantized (q*) dtype or storage dtype -> the storage dtype quantized_decomposed ops use
_UNDERLYING: dict[torch.dtype, torch.dtype] = {
    torch.quint8: torch.uint8,
    torch.qint8: torch.int8,
    torch.qint32: torch.int32,
    torch.quint4x2: torch.uint8,
    torch.quint2x4: torch.uint8,
    torch.uint8: torch.uint8,
    torch.int8: torch.int8,
    torch.uint16: torch.uint16,
    torch.int16: torch.int16,
    torch.int32: torch.int32,
    torch.float8_e5m2: torch.float8_e5m2,
    torch.float8_e4m3fn: torch.float8_e4m3fn,
}
_INT8 = (torch.qint8, torch.int8)
_UINT8 = (torch.quint8, torch.uint8)
_INT32 = (torch.qint32, torch.int32)


class InvalidQuantRangeError(InvalidArgumentError):
    """A quantization range or min/max statistic is unusable (torchao asserts here)."""


def is_per_tensor(qscheme: torch.qscheme | None) -> bool:
    """True for ``per_tensor_affine`` / ``per_tensor_symmetric``."""
    return qscheme in _PER_TENSOR


def is_per_channel(qscheme: torch.qscheme | None) -> bool:
    """True for the three per-channel qschemes (affine, symmetric, float qparams)."""
    return qscheme in _PER_CHANNEL


def to_underlying_dtype(qdtype: torch.dtype) -> torch.dtype:
    """Storage dtype of a quantized dtype (``torch.quint8`` -> ``torch.uint8``); identity on
    storage dtypes. 4- and 2-bit packed dtypes map to ``torch.uint8``."""
    if qdtype not in _UNDERLYING:
        raise InvalidArgumentError(
            f"to_underlying_dtype: unsupported dtype {qdtype}; expected one of {list(_UNDERLYING)}"
        )
    return _UNDERLYING[qdtype]


def check_min_max_valid(min_val: torch.Tensor, max_val: torch.Tensor) -> bool:
    """False (with a warning) if no statistic was recorded yet (empty tensors, or the +inf /
    -inf initial values); raises if ``min_val > max_val`` anywhere; True otherwise."""
    message = "must run observer before calling calculate_qparams. Returning default values."
    if min_val.numel() == 0 or max_val.numel() == 0:
        warnings.warn(message, stacklevel=2)
        return False
    if min_val.dim() == 0 or max_val.dim() == 0:
        if bool(min_val == float("inf")) and bool(max_val == float("-inf")):
            warnings.warn(message, stacklevel=2)
            return False
    if not bool(torch.all(min_val <= max_val)):
        raise InvalidQuantRangeError(f"min {min_val} should be less than max {max_val}")
    return True


def _check_customized_range(lo: int, hi: int, dtype: torch.dtype) -> None:
    length = hi - lo + 1
    if dtype in _INT8 and not 0 < length <= 256:
        raise InvalidQuantRangeError(
            f"quantization range [{lo}, {hi}] of {dtype} must be non-empty and span at most 256"
        )
    if dtype in _INT32 and not 0 < length <= 2**32:
        raise InvalidQuantRangeError(
            f"quantization range [{lo}, {hi}] of {dtype} must be non-empty and span at most 2**32"
        )


def calculate_qmin_qmax(
    quant_min: int,
    quant_max: int,
    has_customized_qrange: bool,
    dtype: torch.dtype,
    reduce_range: bool,
) -> tuple[int, int]:
    """The range an observer quantizes to.

    With ``has_customized_qrange`` the given range (halved by ``reduce_range``, as torchao does
    even for custom ranges); otherwise the 8-bit default of ``dtype`` (int8 [-128, 127] or
    [-64, 63] reduced, uint8 [0, 255] or [0, 127]), the full int32 / uint16 / int16 range, and
    [0, 15] for any other dtype (4-bit).
    """
    if has_customized_qrange:
        if quant_min is not None and quant_max is not None:
            _check_customized_range(quant_min, quant_max, dtype)
        if reduce_range:
            quant_min, quant_max = quant_min // 2, quant_max // 2
        return quant_min, quant_max
    if dtype in _INT8:
        return (-64, 63) if reduce_range else (-128, 127)
    if dtype in _UINT8:
        return (0, 127) if reduce_range else (0, 255)
    if dtype in _INT32:
        return -(2**31), 2**31 - 1
    if dtype == torch.uint16:
        return 0, 2**16 - 1
    if dtype == torch.int16:
        return -(2**15), 2**15 - 1
    return 0, 15


def validate_qmin_qmax(quant_min: int, quant_max: int) -> None:
    """Raise unless a user-given range contains 0 and ``quant_min < quant_max``."""
    if not quant_min <= 0 <= quant_max:
        raise InvalidQuantRangeError(
            f"user-specified quantization range [{quant_min}, {quant_max}] must include 0"
        )
    if not quant_min < quant_max:
        raise InvalidQuantRangeError(
            f"user-specified quantization range needs quant_min < quant_max, got "
            f"[{quant_min}, {quant_max}]"
        )


def determine_qparams(
    min_val: torch.Tensor,
    max_val: torch.Tensor,
    quant_min: int,
    quant_max: int,
    dtype: torch.dtype,
    eps: torch.Tensor,
    has_customized_qrange: bool,
    qscheme: torch.qscheme = torch.per_tensor_affine,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale float64, zero_point int64) from min/max statistics (0-d or per channel).

    Affine: ``scale = (max(max,0) - min(min,0)) / (qmax - qmin)`` (at least ``eps``),
    ``zp = clamp(qmin - round(min(min,0) / scale), qmin, qmax)`` (round half to even).
    Symmetric: ``scale = max(-min(min,0), max(max,0)) / ((qmax - qmin) / 2)``, ``zp`` 0, or for
    uint8 128 (the rounded-down middle of a customized range). Float qparams:
    ``scale = (max - min) / (qmax - qmin)`` (1.0 where not above eps), ``zp = -min / scale``
    (float). Unobserved statistics give ``([1.0], [0])`` with a warning.
    """
    device = min_val.device
    if not check_min_max_valid(min_val, max_val):
        return torch.tensor([1.0], device=device), torch.tensor([0], device=device)
    eps = eps.to(device)
    min_neg = torch.minimum(min_val, torch.zeros_like(min_val))
    max_pos = torch.maximum(max_val, torch.zeros_like(max_val))
    if qscheme in _SYMMETRIC:
        scale = torch.maximum(torch.maximum(-min_neg, max_pos) / ((quant_max - quant_min) / 2), eps)
        zp_value = 0
        if dtype in _UINT8:
            zp_value = (quant_min + quant_max) // 2 if has_customized_qrange else 128
        zero_point = torch.full(scale.shape, zp_value, dtype=torch.int64, device=device)
    elif qscheme == torch.per_channel_affine_float_qparams:
        scale = (max_val - min_val) / float(quant_max - quant_min)
        scale = torch.where(scale > eps, scale, torch.ones_like(scale))
        zero_point = -1 * min_val / scale
    else:
        scale = torch.maximum((max_pos - min_neg) / float(quant_max - quant_min), eps)
        zero_point = quant_min - torch.round(min_neg / scale).to(torch.int)
        zero_point = torch.clamp(zero_point, quant_min, quant_max)
    scale = scale.reshape(1) if scale.dim() == 0 else scale
    zero_point = zero_point.reshape(1) if zero_point.dim() == 0 else zero_point
    if qscheme == torch.per_channel_affine_float_qparams:
        return scale.to(torch.double), zero_point.to(torch.double)
    return scale.to(torch.double), zero_point.to(torch.int64)


def get_qparam_dict(observer_or_fake_quant: Any) -> dict[str, Any]:
    """``{"qscheme", "dtype", "scale", "zero_point", "quant_min", "quant_max"[, "axis"]}`` of a
    calibrated observer / fake-quantizer, with symmetric qschemes reported as their affine
    twins (as a quantized tensor stores them). Observers without qparams (placeholder, no
    qscheme) give ``{"qscheme": None, "dtype": ...}``."""
    from pt2q.observer.placeholder import PlaceholderObserver

    qscheme = getattr(observer_or_fake_quant, "qscheme", None)
    dtype = observer_or_fake_quant.dtype
    if not qscheme or isinstance(observer_or_fake_quant, PlaceholderObserver):
        return {"qscheme": None, "dtype": dtype}
    qparams: dict[str, Any] = {"dtype": dtype}
    if is_per_tensor(qscheme):
        qparams["qscheme"] = torch.per_tensor_affine
    elif is_per_channel(qscheme):
        symmetric = qscheme == torch.per_channel_symmetric
        qparams["qscheme"] = torch.per_channel_affine if symmetric else qscheme
        qparams["axis"] = observer_or_fake_quant.ch_axis
    else:
        raise ValueError(f"get_qparam_dict: unrecognized qscheme {qscheme}")
    scale, zero_point = observer_or_fake_quant.calculate_qparams()
    qparams["scale"] = scale
    qparams["zero_point"] = zero_point
    for name in ("quant_min", "quant_max"):
        if hasattr(observer_or_fake_quant, name):
            qparams[name] = getattr(observer_or_fake_quant, name)
    return qparams
