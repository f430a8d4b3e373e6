"""The affine quantization primitives: qparams from statistics, quantize, dequantize, fake-quant.

Formulas in ``pt2q.affine.mapping``; the same as torchao 0.18's pt2e affine primitives (checked
against torchao in ``tests/affine``). ``fake_quantize_affine`` passes gradients straight through
inside [qmin, qmax] and gives zero where the value was clamped. A sub-byte target is stored in
int8 / uint8 (``pt2q.affine.target_dtype``).

Shapes: ``min_val`` / ``max_val`` / ``scale`` / ``zero_point`` have one element per block, in
the layout of ``qparams_shape(block_size, input.shape)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pt2q.affine.block_size import reduction_shape
from pt2q.affine.mapping import MappingType, ZeroPointDomain
from pt2q.affine.target_dtype import TargetDType, resolve_range

__all__ = [
    "block_min_max",
    "choose_qparams_affine",
    "choose_qparams_affine_with_min_max",
    "quantize_affine",
    "dequantize_affine",
    "fake_quantize_affine",
]


def block_min_max(x: torch.Tensor, block_size: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(min, max) of every block of ``x``, in the shape ``qparams_shape(block_size, x.shape)``."""
    view, dims = reduction_shape(block_size, x.shape)
    kept = [s // b for s, b in zip(x.shape, block_size, strict=True)]
    v = x.reshape(view)
    if not dims:
        return v.reshape(kept), v.reshape(kept)
    return torch.amin(v, dim=dims).reshape(kept), torch.amax(v, dim=dims).reshape(kept)


def choose_qparams_affine_with_min_max(
    min_val: torch.Tensor,
    max_val: torch.Tensor,
    mapping_type: MappingType,
    target_dtype: TargetDType,
    quant_min: int | None = None,
    quant_max: int | None = None,
    eps: float | None = None,
    scale_dtype: torch.dtype | None = None,
    zero_point_dtype: torch.dtype | None = None,
    preserve_zero: bool = True,
    zero_point_domain: ZeroPointDomain = ZeroPointDomain.INT,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(scale, zero_point) per block from per-block statistics (see ``pt2q.affine.mapping``).

    ``zero_point`` is None for ``ZeroPointDomain.NONE`` with ASYMMETRIC mapping; symmetric
    mappings give the midpoint ``int((qmin + qmax + 1) / 2)`` (0 for signed targets). Dtypes
    default to ``min_val``'s (as torchao), eps to its machine epsilon.
    """
    _, qmin, qmax = resolve_range(target_dtype, quant_min, quant_max)
    scale_dtype = min_val.dtype if scale_dtype is None else scale_dtype
    zero_point_dtype = min_val.dtype if zero_point_dtype is None else zero_point_dtype
    eps = torch.finfo(min_val.dtype).eps if eps is None else eps
    lo, hi = min_val, max_val
    if preserve_zero:
        lo, hi = torch.clamp(lo, max=0), torch.clamp(hi, min=0)
    zero_point: torch.Tensor | None
    if mapping_type in (MappingType.SYMMETRIC, MappingType.SYMMETRIC_NO_CLIPPING_ERR):
        if not preserve_zero:
            raise ValueError(f"{mapping_type}: preserve_zero=False needs ASYMMETRIC mapping")
        if zero_point_domain not in (ZeroPointDomain.INT, None):
            raise ValueError(
                f"{mapping_type}: zero_point_domain must be ZeroPointDomain.INT, got "
                f"{zero_point_domain}"
            )
        if mapping_type == MappingType.SYMMETRIC:
            scale = torch.maximum(-lo, hi) / (float(qmax - qmin) / 2)
        else:
            if qmin >= 0:
                raise ValueError(
                    f"SYMMETRIC_NO_CLIPPING_ERR needs a signed range, got [{qmin}, {qmax}]"
                )
            smin, smax = lo / float(qmin), hi / float(qmax)
            scale = torch.where(smin > smax, smin, smax)
        scale = torch.clamp(scale, min=eps)
        zero_point = torch.full_like(scale, int((qmax + qmin + 1) / 2))
    elif mapping_type == MappingType.ASYMMETRIC:
        scale = torch.clamp((hi - lo) / float(qmax - qmin), min=eps)
        if zero_point_domain == ZeroPointDomain.NONE:
            zero_point = None
        elif preserve_zero:
            zero_point = torch.clamp(qmin - torch.round(lo / scale), qmin, qmax)
        elif zero_point_domain == ZeroPointDomain.FLOAT:
            zero_point = lo + scale * ((qmax + qmin + 1) / 2)
        else:
            raise ValueError("preserve_zero=False needs zero_point_domain=ZeroPointDomain.FLOAT")
    else:
        raise ValueError(f"unsupported mapping_type {mapping_type!r}; expected a MappingType")
    return scale.to(scale_dtype), None if zero_point is None else zero_point.to(zero_point_dtype)


def choose_qparams_affine(
    x: torch.Tensor,
    mapping_type: MappingType,
    block_size: Sequence[int],
    target_dtype: TargetDType,
    quant_min: int | None = None,
    quant_max: int | None = None,
    eps: float | None = None,
    scale_dtype: torch.dtype | None = None,
    zero_point_dtype: torch.dtype | None = None,
    preserve_zero: bool = True,
    zero_point_domain: ZeroPointDomain = ZeroPointDomain.INT,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``choose_qparams_affine_with_min_max`` on the per-block min / max of ``x``."""
    lo, hi = block_min_max(x, block_size)
    return choose_qparams_affine_with_min_max(
        lo, hi, mapping_type, target_dtype, quant_min, quant_max, eps,
        scale_dtype, zero_point_dtype, preserve_zero, zero_point_domain,
    )  # fmt: skip


def _per_element(
    x: torch.Tensor, block_size: Sequence[int], qparam: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x viewed for reduction, ``qparam`` viewed to broadcast against it)."""
    view, dims = reduction_shape(block_size, x.shape)
    after = list(view)
    for d in dims:
        after[d] = 1
    return x.reshape(view), qparam.reshape(after)


def _quantize_float(
    x: torch.Tensor,
    block_size: Sequence[int],
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    qmin: int,
    qmax: int,
    domain: ZeroPointDomain,
) -> torch.Tensor:
    """The rounded, clamped integer values of ``x`` as floats, in ``x``'s original shape."""
    v, s = _per_element(x, block_size, scale)
    if domain == ZeroPointDomain.NONE or zero_point is None:
        q = torch.round(v * (1.0 / s))
    else:
        _, z = _per_element(x, block_size, zero_point)
        if domain == ZeroPointDomain.FLOAT:
            q = torch.round((v - (z - s * ((qmax + qmin + 1) / 2))) / s)
        else:
            q = torch.round(v * (1.0 / s)) + z
    return torch.clamp(q, qmin, qmax).reshape(x.shape)


def quantize_affine(
    x: torch.Tensor,
    block_size: Sequence[int],
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    output_dtype: TargetDType,
    quant_min: int | None = None,
    quant_max: int | None = None,
    zero_point_domain: ZeroPointDomain = ZeroPointDomain.INT,
) -> torch.Tensor:
    """Integer values of ``x`` in the storage dtype of ``output_dtype`` (int4 -> int8)."""
    storage, qmin, qmax = resolve_range(output_dtype, quant_min, quant_max)
    q = _quantize_float(x, block_size, scale, zero_point, qmin, qmax, zero_point_domain)
    return q.to(storage)


def _dequantize_float(
    q: torch.Tensor,
    block_size: Sequence[int],
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    qmin: int,
    qmax: int,
    domain: ZeroPointDomain,
    output_dtype: torch.dtype,
) -> torch.Tensor:
    v, s = _per_element(q, block_size, scale)
    if domain == ZeroPointDomain.FLOAT:
        out = (v - (qmax + qmin + 1) / 2).to(output_dtype) * s
        if zero_point is not None:
            out = out + _per_element(q, block_size, zero_point)[1]
    elif domain == ZeroPointDomain.NONE or zero_point is None:
        out = v.to(output_dtype) * s
    else:
        z = _per_element(q, block_size, zero_point)[1]
        out = (v.to(torch.int32) - z.to(torch.int32)).to(output_dtype) * s
    return out.reshape(q.shape).to(output_dtype)


def dequantize_affine(
    q: torch.Tensor,
    block_size: Sequence[int],
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    input_dtype: TargetDType,
    quant_min: int | None = None,
    quant_max: int | None = None,
    zero_point_domain: ZeroPointDomain = ZeroPointDomain.INT,
    *,
    output_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Float values of the integers ``q`` (see ``pt2q.affine.mapping``)."""
    storage, qmin, qmax = resolve_range(input_dtype, quant_min, quant_max)
    if q.dtype != storage:
        raise ValueError(
            f"dequantize_affine: expected a {storage} tensor for {input_dtype}, got {q.dtype}"
        )
    return _dequantize_float(
        q, block_size, scale, zero_point, qmin, qmax, zero_point_domain, output_dtype
    )


class _FakeQuantizeAffine(torch.autograd.Function):
    """quantize -> dequantize in float; straight-through gradient inside the clamp range."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        x: torch.Tensor,
        block_size: tuple[int, ...],
        scale: torch.Tensor,
        zero_point: torch.Tensor | None,
        qmin: int,
        qmax: int,
        domain: ZeroPointDomain,
    ) -> torch.Tensor:
        v, s = _per_element(x, block_size, scale)
        if domain == ZeroPointDomain.FLOAT and zero_point is not None:
            z = _per_element(x, block_size, zero_point)[1]
            unclamped = torch.round((v - (z - s * ((qmax + qmin + 1) / 2))) / s)
        elif domain == ZeroPointDomain.NONE or zero_point is None:
            unclamped = torch.round(v * (1.0 / s))
        else:
            unclamped = torch.round(v * (1.0 / s)) + _per_element(x, block_size, zero_point)[1]
        inside = ((unclamped >= qmin) & (unclamped <= qmax)).reshape(x.shape)
        ctx.save_for_backward(inside)
        q = torch.clamp(unclamped, qmin, qmax).reshape(x.shape)
        return _dequantize_float(q, block_size, scale, zero_point, qmin, qmax, domain, x.dtype)

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        (inside,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return grad * inside, None, None, None, None, None, None


def fake_quantize_affine(
    x: torch.Tensor,
    block_size: Sequence[int],
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    quant_dtype: TargetDType,
    quant_min: int | None = None,
    quant_max: int | None = None,
    zero_point_domain: ZeroPointDomain = ZeroPointDomain.INT,
) -> torch.Tensor:
    """``dequantize_affine(quantize_affine(x))`` without the integer cast, differentiable
    (straight-through estimator: gradient 1 where ``x`` is inside the range, else 0)."""
    _, qmin, qmax = resolve_range(quant_dtype, quant_min, quant_max)
    if zero_point_domain == ZeroPointDomain.NONE and zero_point is not None:
        raise ValueError("fake_quantize_affine: zero_point must be None for ZeroPointDomain.NONE")
    fq = _FakeQuantizeAffine.apply(
        x, tuple(block_size), scale, zero_point, qmin, qmax, zero_point_domain
    )
    return fq
