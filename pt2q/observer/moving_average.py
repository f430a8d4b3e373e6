"""Moving-average min/max observers (per tensor and per channel), the default of fake-quantize.

The first batch sets min/max; each later batch moves them by ``averaging_constant`` towards the
batch's own min/max::

    min_val <- min_val + averaging_constant * (batch_min - min_val)   # likewise max_val

Same update and defaults (``averaging_constant=0.01``) as torchao's observers of the same names.
"""

from __future__ import annotations

from typing import Any

import torch

from pt2q.observer.minmax import MinMaxObserver, PerChannelMinMaxObserver

__all__ = [
    "MovingAverageMinMaxObserver",
    "MovingAveragePerChannelMinMaxObserver",
]


def _check_averaging_constant(owner: str, averaging_constant: float) -> float:
    value = float(averaging_constant)
    if not 0.0 < value <= 1.0:
        raise ValueError(
            f"{owner}: averaging_constant must be in (0, 1], got {averaging_constant!r}"
        )
    return value


def _step_towards(obs: Any, lo: torch.Tensor, hi: torch.Tensor) -> None:
    """min/max += averaging_constant * (batch value - min/max)."""
    c = obs.averaging_constant
    obs.min_val = obs.min_val + c * (lo - obs.min_val)
    obs.max_val = obs.max_val + c * (hi - obs.max_val)


class MovingAverageMinMaxObserver(MinMaxObserver):
    """Per-tensor min/max as an exponential moving average over batches."""

    def __init__(self, averaging_constant: float = 0.01, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.averaging_constant = _check_averaging_constant(type(self).__name__, averaging_constant)

    def _merge(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        if not self.has_observed:  # the first batch sets the range
            self.min_val, self.max_val = lo, hi
            return
        _step_towards(self, lo, hi)


class MovingAveragePerChannelMinMaxObserver(PerChannelMinMaxObserver):
    """Per-channel (along ``ch_axis``) min/max as an exponential moving average over batches."""

    def __init__(self, averaging_constant: float = 0.01, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.averaging_constant = _check_averaging_constant(type(self).__name__, averaging_constant)

    def _merge(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        _step_towards(self, lo, hi)  # the first batch was stored by the base class
