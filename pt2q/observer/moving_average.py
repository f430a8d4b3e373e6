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

__all__ = ["MovingAverageMinMaxObserver", "MovingAveragePerChannelMinMaxObserver"]


def _check_averaging_constant(owner: str, averaging_constant: float) -> float:
    value = float(averaging_constant)
    if not 0.0 < value <= 1.0:
        raise ValueError(
            f"{owner}: averaging_constant must be in (0, 1], got {averaging_constant!r}"
        )
    return value


class MovingAverageMinMaxObserver(MinMaxObserver):
    """Per-tensor min/max as an exponential moving average over batches."""

    def __init__(self, averaging_constant: float = 0.01, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.averaging_constant = _check_averaging_constant(type(self).__name__, averaging_constant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() == 0:
            return x
        self._check_finite(x)
        lo, hi = torch.aminmax(x.detach().float())
        if self.has_observed:
            c = self.averaging_constant
            lo = self.min_val + c * (lo - self.min_val)
            hi = self.max_val + c * (hi - self.max_val)
        self.min_val = lo
        self.max_val = hi
        return x


class MovingAveragePerChannelMinMaxObserver(PerChannelMinMaxObserver):
    """Per-channel (along ``ch_axis``) min/max as an exponential moving average over batches."""

    def __init__(self, averaging_constant: float = 0.01, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.averaging_constant = _check_averaging_constant(type(self).__name__, averaging_constant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() == 0:
            return x
        if self.min_val.numel() == 0:
            return super().forward(x)  # first batch: plain per-channel min/max
        old_min, old_max = self.min_val, self.max_val
        self.min_val = torch.full_like(old_min, float("inf"))
        self.max_val = torch.full_like(old_max, float("-inf"))
        try:
            super().forward(x)  # checks finiteness, axis and channel count
        except Exception:
            self.min_val, self.max_val = old_min, old_max
            raise
        c = self.averaging_constant
        self.min_val = old_min + c * (self.min_val - old_min)
        self.max_val = old_max + c * (self.max_val - old_max)
        return x
