"""Which ``quantized_decomposed`` form a static block size has, and the check quantizers run
before annotating a weight with an affine spec (so a weight the IR cannot express stays float
with a reason instead of failing at convert).

Static forms (``shape`` concrete)::

    every dim reduced                          -> PER_TENSOR  quantize_per_tensor
    one dim kept (block 1), the rest reduced   -> PER_CHANNEL quantize_per_channel(axis)
    2-D, block (1, g) with 1 < g < K           -> PER_GROUP   quantize_per_channel_group(g)
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

from pt2q.affine.block_size import get_block_size
from pt2q.affine.granularity import Granularity

__all__ = ["StaticKind", "static_kind", "granularity_of_ctr", "unsupported_weight_reason"]


class StaticKind(Enum):
    PER_TENSOR = "per_tensor"
    PER_CHANNEL = "per_channel"
    PER_GROUP = "per_group"


def static_kind(
    block_size: Sequence[int], shape: Sequence[int], where: str
) -> tuple[StaticKind, int]:
    """(kind, channel axis or group size; -1 per tensor); ValueError naming ``where`` when the
    block size has no IR form."""
    pairs = list(zip(block_size, shape, strict=True))
    kept = [i for i, (b, s) in enumerate(pairs) if b == 1 and s > 1]
    split = [i for i, (b, s) in enumerate(pairs) if 1 < b < s]
    if not split and not kept:
        return StaticKind.PER_TENSOR, -1
    if not split and len(kept) == 1:
        return StaticKind.PER_CHANNEL, kept[0]
    if len(shape) == 2 and split == [1] and block_size[0] == 1:
        return StaticKind.PER_GROUP, int(block_size[1])
    raise ValueError(
        f"{where}: block size {tuple(block_size)} on shape {tuple(shape)} has no "
        "quantized_decomposed form (per tensor, one channel axis, or groups along the last dim "
        "of a 2-D tensor)"
    )


def granularity_of_ctr(ctr: Any) -> Granularity | None:
    """The ``granularity`` bound in an observer / fake-quant constructor (``with_args``
    keywords, looking into a bound ``observer=``), or None for non-affine constructors."""
    keywords = getattr(ctr, "keywords", None)
    if not isinstance(keywords, dict):
        return None
    if isinstance(keywords.get("granularity"), Granularity):
        return keywords["granularity"]
    inner = keywords.get("observer")
    return None if inner is None else granularity_of_ctr(inner)


def unsupported_weight_reason(spec: Any, weight_shape: Sequence[int] | None) -> str | None:
    """Why ``spec`` (an affine weight spec) cannot quantize a weight of ``weight_shape``
    statically, or None when it can (or ``spec`` is not affine)."""
    granularity = granularity_of_ctr(getattr(spec, "observer_or_fake_quant_ctr", None))
    if granularity is None or weight_shape is None:
        return None
    shape = tuple(int(s) for s in weight_shape)
    try:
        static_kind(get_block_size(shape, granularity), shape, "weight")
    except ValueError as e:
        return f"weight {shape} cannot be quantized with {granularity}: {e}"
    return None
