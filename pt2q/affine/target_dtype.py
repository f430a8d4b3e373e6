"""Target dtypes of affine quantization and how the reference program stores them.

The ``quantized_decomposed`` IR has int8 / uint8 / int16 / int32 storage only, so a sub-byte
target is stored in a byte with its range narrowed::

    torch.int4 / TorchAODType.INT4   -> int8 tensor, values in [-8, 7]
    torch.uint4                      -> uint8 tensor, values in [0, 15]
    (likewise int1..int7, uint1..uint7)

``torch.quint4x2`` (torch's packed 4-bit dtype of the float-qparams embedding defaults) maps to
uint8 in [0, 15]; a lowering packs two values per byte.
"""

from __future__ import annotations

import torch

from pt2q.affine.mapping import TorchAODType

__all__ = ["TargetDType", "storage_of", "resolve_range"]

TargetDType = torch.dtype | TorchAODType

_FULL: dict[torch.dtype, tuple[int, int]] = {
    torch.uint8: (0, 255),
    torch.int8: (-128, 127),
    torch.int16: (-(2**15), 2**15 - 1),
    torch.int32: (-(2**31), 2**31 - 1),
}
_SIGNED_SUB_BYTE = {getattr(torch, f"int{n}"): n for n in range(1, 8)}
_UNSIGNED_SUB_BYTE = {getattr(torch, f"uint{n}"): n for n in range(1, 8)}
_AOD_BITS = {t: i + 1 for i, t in enumerate(TorchAODType)}


def storage_of(target: TargetDType) -> tuple[torch.dtype, int, int]:
    """(storage dtype, full qmin, full qmax) of ``target``; ValueError for a dtype the
    ``quantized_decomposed`` IR cannot hold (floats, float8, ...)."""
    if isinstance(target, TorchAODType):
        n = _AOD_BITS[target]
        return torch.int8, -(2 ** (n - 1)), 2 ** (n - 1) - 1
    if target in _FULL:
        lo, hi = _FULL[target]
        return target, lo, hi
    if target in _SIGNED_SUB_BYTE:
        n = _SIGNED_SUB_BYTE[target]
        return torch.int8, -(2 ** (n - 1)), 2 ** (n - 1) - 1
    if target in _UNSIGNED_SUB_BYTE:
        return torch.uint8, 0, 2 ** _UNSIGNED_SUB_BYTE[target] - 1
    if target == torch.quint4x2:
        return torch.uint8, 0, 15
    if target in (torch.quint8, torch.qint8, torch.qint32):
        plain = {torch.quint8: torch.uint8, torch.qint8: torch.int8, torch.qint32: torch.int32}
        return storage_of(plain[target])
    raise ValueError(
        f"target dtype {target} has no integer storage in the quantized_decomposed IR; use "
        "torch.int8 / torch.uint8 / torch.int16 / torch.int32 or a sub-byte torch.intN / uintN"
    )


def resolve_range(
    target: TargetDType, quant_min: int | None, quant_max: int | None
) -> tuple[torch.dtype, int, int]:
    """(storage dtype, qmin, qmax): the given bounds (checked against the target's range) or
    the target's full range."""
    storage, lo, hi = storage_of(target)
    qmin = lo if quant_min is None else int(quant_min)
    qmax = hi if quant_max is None else int(quant_max)
    if not lo <= qmin <= qmax <= hi:
        raise ValueError(
            f"[quant_min, quant_max] = [{quant_min}, {quant_max}] is outside the range "
            f"[{lo}, {hi}] of target dtype {target} (or quant_min > quant_max)"
        )
    return storage, qmin, qmax
