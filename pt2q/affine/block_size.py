"""Block sizes: the shape of the slices of a tensor that share one (scale, zero_point).

``get_block_size(shape, granularity)`` follows the seed catalogue (and torchao): a dim whose
block size equals the dim is reduced, a dim of block size 1 is kept, anything in between splits
the dim into ``dim // block`` groups. Example for a (4, 64) weight::

    PerTensor()      -> (4, 64)     scale shape ()
    PerAxis(0)       -> (1, 64)     scale shape (4,)
    PerGroup(32)     -> (1, 32)     scale shape (4, 2)
    PerBlock((2, 32))-> (2, 32)     scale shape (2, 2)
"""

from __future__ import annotations

from collections.abc import Sequence

from pt2q.affine.granularity import (
    Granularity,
    PerAxis,
    PerBlock,
    PerGroup,
    PerRow,
    PerTensor,
    PerToken,
)

__all__ = ["get_block_size", "reduction_shape", "qparams_shape"]


def _dim(owner: str, dim: int, rank: int, shape: Sequence[int]) -> int:
    if not -rank <= dim < rank:
        raise ValueError(f"{owner}: dim {dim} is out of range for an input of shape {tuple(shape)}")
    return dim % rank


def get_block_size(input_shape: Sequence[int], granularity: Granularity) -> tuple[int, ...]:
    """The block size of ``granularity`` on a tensor of ``input_shape``; raises ValueError when
    the shape does not divide into whole blocks (naming both)."""
    shape = tuple(int(s) for s in input_shape)
    rank = len(shape)
    if isinstance(granularity, PerTensor):
        return shape
    if isinstance(granularity, PerAxis):
        axis = _dim("PerAxis", granularity.axis, rank, shape)
        return tuple(1 if i == axis else s for i, s in enumerate(shape))
    if isinstance(granularity, PerRow):
        d = _dim("PerRow", granularity.dim, rank, shape)
        return tuple(s if i == d else 1 for i, s in enumerate(shape))
    if isinstance(granularity, PerToken):
        if rank == 0:
            raise ValueError("PerToken: a 0-d tensor has no tokens")
        return (1,) * (rank - 1) + (shape[-1],)
    if isinstance(granularity, PerGroup):
        if rank == 0 or shape[-1] % granularity.group_size != 0:
            raise ValueError(
                f"PerGroup({granularity.group_size}): the last dim of shape {shape} must be a "
                "multiple of the group size; pick a group size that divides it"
            )
        return (1,) * (rank - 1) + (granularity.group_size,)
    if isinstance(granularity, PerBlock):
        block = (1,) * (rank - len(granularity.block_size)) + granularity.block_size
        if len(block) != rank or any(s % b for s, b in zip(shape, block, strict=True)):
            raise ValueError(
                f"PerBlock({granularity.block_size}): shape {shape} does not divide into whole "
                "blocks (each block dim must divide the matching trailing dim)"
            )
        return block
    raise ValueError(f"get_block_size: unsupported granularity {granularity!r}")


def reduction_shape(
    block_size: Sequence[int], input_shape: Sequence[int]
) -> tuple[list[int], list[int]]:
    """(shape to view the input as, dims of that view to reduce): a dim split into groups of
    ``b`` becomes ``(dim // b, b)`` and the ``b`` part is reduced."""
    if len(block_size) != len(input_shape):
        raise ValueError(
            f"block size {tuple(block_size)} and input shape {tuple(input_shape)} differ in rank"
        )
    view: list[int] = []
    reduce: list[int] = []
    for b, s in zip(block_size, input_shape, strict=True):
        if b != s and b > 1:
            if s % b:
                raise ValueError(f"input dim {s} is not a multiple of its block size {b}")
            view += [s // b, b]
            reduce.append(len(view) - 1)
        else:
            view.append(s)
            if b != 1:
                reduce.append(len(view) - 1)
    return view, reduce


def qparams_shape(block_size: Sequence[int], input_shape: Sequence[int]) -> tuple[int, ...]:
    """Shape of the scale / zero_point tensors: ``input_shape[i] // block_size[i]`` per dim."""
    return tuple(s // b for s, b in zip(input_shape, block_size, strict=True))
