"""The bounded-size value sample every activation observer keeps, for quantization health.

Each statically quantized activation observer holds ``SAMPLE_SIZE`` float32 values drawn from
everything it observed (a non-persistent buffer ``health_sample``, so ``state_dict`` is
unchanged) and the number of values seen (``health_seen``). ``pt2q.health`` computes the
health numbers from it together with the observer's exact ``min_val`` / ``max_val``.

Cost per observed batch: O(``SAMPLE_SIZE``), independent of the batch size (one gather of
``SAMPLE_SIZE`` elements, no pass over the batch). The draw is deterministic (no random
generator): indices follow a golden-ratio low-discrepancy sequence whose phase moves with every
batch, so periodic layouts (masked key columns of attention scores, channels) are not aliased.

Merging a batch of ``n`` values into a sample that stands for ``N`` values replaces a share
``n / (N + n)`` of the slots (chosen by a second low-discrepancy sequence), so every batch is
represented in proportion to its size.
"""

from __future__ import annotations

import torch

__all__ = ["SAMPLE_SIZE", "merge_into_sample", "draw_sample"]

SAMPLE_SIZE = 4096
_PHI = 0.6180339887498949  # golden ratio - 1
_SQRT2 = 0.41421356237309515  # sqrt(2) - 1


def _sequence(k: int, phase: float, step: float, device: torch.device) -> torch.Tensor:
    """(k,) float64 in [0, 1): frac(phase + i * step)."""
    i = torch.arange(k, dtype=torch.float64, device=device)
    return torch.frac(i * step + phase)


def draw_sample(x: torch.Tensor, k: int, phase: float) -> torch.Tensor:
    """(k,) float32 values of ``x`` at low-discrepancy positions (repeats when x has fewer)."""
    flat = x.detach().reshape(-1)
    pos = (_sequence(k, phase, _PHI, flat.device) * flat.numel()).long()
    return flat[pos].float()


def merge_into_sample(
    sample: torch.Tensor, seen: int, x: torch.Tensor, batch_index: int
) -> tuple[torch.Tensor, int]:
    """``(sample, seen)`` after observing ``x``; ``sample`` is (SAMPLE_SIZE,) (empty at first)."""
    n = x.numel()
    if n == 0:
        return sample, seen
    phase = batch_index * _SQRT2
    drawn = draw_sample(x, SAMPLE_SIZE, phase)
    if seen == 0 or sample.numel() != SAMPLE_SIZE:
        return drawn, n
    share = n / (seen + n)
    replace = _sequence(SAMPLE_SIZE, phase * _PHI, _SQRT2, sample.device) < share
    return torch.where(replace.to(sample.device), drawn.to(sample.device), sample), seen + n
