"""How floats map to integers (``MappingType``), where the zero point lives
(``ZeroPointDomain``), and the sub-byte integer placeholders (``TorchAODType``).

Formulas (``pt2q.affine.primitives`` implements them; [lo, hi] is the statistic range, widened
to include 0 when ``preserve_zero``; round is half to even)::

    SYMMETRIC                  scale = max(-lo, hi) / ((qmax - qmin) / 2)
    SYMMETRIC_NO_CLIPPING_ERR  scale = max(lo / qmin, hi / qmax)       (neither end clips)
    ASYMMETRIC                 scale = (hi - lo) / (qmax - qmin)

    ZeroPointDomain.INT    q = clamp(round(x / scale) + zp, qmin, qmax);  x' = (q - zp) * scale
    ZeroPointDomain.FLOAT  q = clamp(round((x - (zp - scale * mid)) / scale), qmin, qmax);
                           x' = (q - mid) * scale + zp,   mid = (qmin + qmax + 1) / 2
    ZeroPointDomain.NONE   q = clamp(round(x / scale), qmin, qmax);  x' = q * scale
"""

from __future__ import annotations

from enum import Enum, auto

__all__ = ["MappingType", "ZeroPointDomain", "TorchAODType"]


class MappingType(Enum):
    """How the float range maps onto the integer range (see the module docstring)."""

    SYMMETRIC = auto()
    SYMMETRIC_NO_CLIPPING_ERR = auto()
    ASYMMETRIC = auto()


class ZeroPointDomain(Enum):
    """Whether the zero point is an integer added after rounding (INT), a float offset
    subtracted before it (FLOAT), or absent (NONE)."""

    INT = auto()
    FLOAT = auto()
    NONE = auto()


class TorchAODType(Enum):
    """Signed sub-byte integer types (``torch.int1`` .. ``torch.int7`` are their torch dtypes).

    pt2q stores their values in int8 tensors (``INT4``: [-8, 7]), the only form the
    ``quantized_decomposed`` IR has, until a lowering packs them.
    """

    INT1 = auto()
    INT2 = auto()
    INT3 = auto()
    INT4 = auto()
    INT5 = auto()
    INT6 = auto()
    INT7 = auto()
