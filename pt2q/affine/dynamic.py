"""Run-time (dynamic) qparams: the ``quantized_decomposed`` op that chooses them, per granularity.

Convert emits these ops for dynamic affine specs, and ``AffineFakeQuantize`` with
``is_dynamic=True`` calls the same ops in training, so QAT sees exactly the qparams the
converted program computes::

    PerTensor, ASYMMETRIC   choose_qparams.tensor(x, qmin, qmax, eps, dtype)
    PerTensor, SYMMETRIC    choose_qparams_symmetric.tensor(x, qmin, qmax, eps, dtype)
    PerToken,  ASYMMETRIC   choose_qparams_per_token_asymmetric(x, int8)   [-128, 127] only
    PerToken,  SYMMETRIC    choose_qparams_per_token(x, int8)              scale = max|x| / 127

(``PerRow()`` with the default ``dim=-1`` is the same as ``PerToken()``.) The per-token ops
return float64 scales and int64 zero points of shape ``x.shape[:-1] + (1,)``.
"""

from __future__ import annotations

from enum import Enum

import torch

from pt2q.affine.granularity import Granularity, PerRow, PerTensor, PerToken
from pt2q.affine.mapping import MappingType

__all__ = ["DynamicKind", "dynamic_kind", "choose_dynamic_qparams"]

qd = torch.ops.quantized_decomposed


class DynamicKind(Enum):
    """The two dynamic granularities the IR can express."""

    PER_TENSOR = "per_tensor"
    PER_TOKEN = "per_token"


def dynamic_kind(
    granularity: Granularity,
    mapping_type: MappingType,
    storage: torch.dtype,
    qmin: int,
    qmax: int,
    where: str,
) -> DynamicKind:
    """Which dynamic op family serves this spec; ValueError naming ``where`` otherwise."""
    if isinstance(granularity, PerTensor):
        return DynamicKind.PER_TENSOR
    per_token = isinstance(granularity, PerToken) or (
        isinstance(granularity, PerRow) and granularity.dim == -1
    )
    if not per_token:
        raise ValueError(
            f"{where}: dynamic quantization with {granularity} has no quantized_decomposed "
            "form; use PerTensor() or PerToken() for dynamic activations"
        )
    if mapping_type == MappingType.SYMMETRIC_NO_CLIPPING_ERR:
        raise ValueError(f"{where}: dynamic per-token quantization supports SYMMETRIC/ASYMMETRIC")
    if storage != torch.int8 or (qmin, qmax) != (-128, 127):
        raise ValueError(
            f"{where}: dynamic per-token quantization is int8 in [-128, 127] in the "
            f"quantized_decomposed IR, got {storage} in [{qmin}, {qmax}]"
        )
    return DynamicKind.PER_TOKEN


def choose_dynamic_qparams(
    x: torch.Tensor,
    kind: DynamicKind,
    mapping_type: MappingType,
    storage: torch.dtype,
    qmin: int,
    qmax: int,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, zero_point) of ``x`` computed now, by the op convert emits for ``kind``."""
    symmetric = mapping_type != MappingType.ASYMMETRIC
    if kind == DynamicKind.PER_TOKEN:
        op = qd.choose_qparams_per_token if symmetric else qd.choose_qparams_per_token_asymmetric
        scale, zp = op.default(x, storage)
        return scale, zp.round().to(torch.int64)
    op = qd.choose_qparams_symmetric if symmetric else qd.choose_qparams
    scale, zp = op.tensor(x, qmin, qmax, eps, storage)
    return scale, zp
