"""Calibration batches, model calls and the output SQNR every algorithm is judged by."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils import _pytree as pytree

__all__ = ["Batch", "Metric", "call", "float_leaves", "output_sqnr", "sqnr_metric", "split_batches"]

# A calibration batch: a tensor (one positional argument), a tuple/list of positional
# arguments, or a dict of keyword arguments.
Batch = Any

# metric(float outputs, quantized outputs, batches) -> score, higher is better
Metric = Callable[[list[Any], list[Any], list[Batch]], float]


def call(model: torch.nn.Module, batch: Batch) -> Any:
    """``model`` applied to one batch (see ``Batch``), without gradients."""
    with torch.no_grad():
        if isinstance(batch, dict):
            return model(**batch)
        if isinstance(batch, (tuple, list)):
            return model(*batch)
        return model(batch)


def float_leaves(output: Any) -> list[torch.Tensor]:
    """The floating-point tensors of a model output (any pytree, HF ModelOutput included)."""
    if hasattr(output, "to_tuple"):
        output = output.to_tuple()
    leaves = pytree.tree_leaves(output)
    return [
        t.detach().double() for t in leaves if isinstance(t, torch.Tensor) and t.is_floating_point()
    ]


def output_sqnr(reference: Sequence[Any], outputs: Sequence[Any]) -> float:
    """10 log10(signal / noise) over all float outputs of all batches, in dB (inf if exact)."""
    signal = noise = 0.0
    for ref, out in zip(reference, outputs, strict=True):
        for r, o in zip(float_leaves(ref), float_leaves(out), strict=True):
            signal += float(r.pow(2).sum())
            noise += float((r - o).pow(2).sum())
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf


def sqnr_metric(reference: list[Any], outputs: list[Any], batches: list[Batch]) -> float:
    """:func:`output_sqnr` as a :data:`Metric` (the default judge of every algorithm)."""
    return output_sqnr(reference, outputs)


def split_batches(
    batches: Sequence[Batch], held_out: int | None
) -> tuple[list[Batch], list[Batch]]:
    """(fit, held out): the last ``held_out`` batches (default a quarter, at least one) are held
    back for judging; with a single batch it serves both."""
    batches = list(batches)
    if not batches:
        raise ValueError("pt2q.algorithms: calibration_batches is empty; pass at least one batch")
    n = max(1, len(batches) // 4) if held_out is None else held_out
    if n < 0 or n >= len(batches):
        if len(batches) == 1:
            return batches, batches
        raise ValueError(
            f"pt2q.algorithms: held_out={held_out} leaves no batch to fit on "
            f"({len(batches)} calibration batches)"
        )
    return batches[: len(batches) - n], batches[len(batches) - n :]
