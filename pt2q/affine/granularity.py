"""Granularities of affine quantization: which elements share one (scale, zero_point).

Frozen, comparable dataclasses with the names and fields of the seed catalogue (and
``torchao.quantization.granularity``); each checks its own fields. ``get_block_size``
(``pt2q.affine.block_size``) turns a granularity and a tensor shape into a block size.

==========================  ============================  ==========================
granularity                 (N, K) weight                 (B, T, D) activation
==========================  ============================  ==========================
``PerTensor()``             one pair                      one pair
``PerAxis(0)``              one per row (channel)         one per batch entry
``PerGroup(g)``             one per g elements of a row   one per g elements of a token
``PerRow()`` (dim=-1)       one per row                   one per (b, t)
``PerToken()``              one per row                   one per (b, t)
``PerBlock((bn, bk))``      one per bn x bk tile          one per (b, t/bn, d/bk) tile
==========================  ============================  ==========================
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Granularity", "PerTensor", "PerAxis", "PerGroup", "PerRow", "PerToken", "PerBlock"]


def _check_int(owner: str, name: str, value: object, minimum: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}.{name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{owner}.{name} must be >= {minimum}, got {value}")


@dataclass(frozen=True)
class Granularity:
    """Base of every granularity (a marker: subclasses carry the fields)."""


@dataclass(frozen=True)
class PerTensor(Granularity):
    """One scale / zero point for the whole tensor."""


@dataclass(frozen=True)
class PerAxis(Granularity):
    """One pair per index along ``axis``; every other dim is reduced (``axis`` may be negative)."""

    axis: int

    def __post_init__(self) -> None:
        _check_int("PerAxis", "axis", self.axis, None)


@dataclass(frozen=True)
class PerGroup(Granularity):
    """One pair per ``group_size`` consecutive elements of the last dim (``K % group_size == 0``)."""

    group_size: int

    def __post_init__(self) -> None:
        _check_int("PerGroup", "group_size", self.group_size, 1)


@dataclass(frozen=True)
class PerRow(Granularity):
    """Reduce over ``dim`` only (default the last): one pair per row of a (N, K) matrix."""

    dim: int = -1

    def __post_init__(self) -> None:
        _check_int("PerRow", "dim", self.dim, None)


@dataclass(frozen=True)
class PerToken(Granularity):
    """One pair per token: the last dim is reduced, every leading dim is kept."""


@dataclass(frozen=True)
class PerBlock(Granularity):
    """One pair per block of ``block_size`` (aligned to the trailing dims; leading dims get 1)."""

    block_size: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.block_size, tuple) or not self.block_size:
            raise TypeError(
                f"PerBlock.block_size must be a non-empty tuple, got {self.block_size!r}"
            )
        for i, b in enumerate(self.block_size):
            _check_int("PerBlock", f"block_size[{i}]", b, 1)
