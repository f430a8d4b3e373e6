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


class MovingAverageMinMaxObserver(MinMaxObserver):
    """Per-tensor min/max as an exponential moving average over batches."""

    def __init__(self, averaging_constant: float = 0.01, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.averaging_constant = _check_averaging_constant(type(self).__name__, averaging_constant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() == 0:
            return x
        lo, hi = torch.aminmax(x.detach().float())
        self._check_finite_stats(x, lo, hi)
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
        assert self.ch_axis is not None
        axis = self.ch_axis if self.ch_axis >= 0 else self.ch_axis + x.dim()
        if not 0 <= axis < x.dim():
            raise ValueError(
                f"{type(self).__name__} at node '{self.node_name}': ch_axis={self.ch_axis} is out "
                f"of range for an input of shape {tuple(x.shape)}"
            )
        y = x.detach().float().movedim(axis, 0).flatten(1)  # (C, everything else)
        lo, hi = torch.aminmax(y, dim=1)  # (C,) each
        self._check_finite_stats(x, lo, hi)
        if self.min_val.numel() == 0:
            self.min_val, self.max_val = lo, hi
            return x
        if self.min_val.shape != lo.shape:
            raise ValueError(
                f"{type(self).__name__} at node '{self.node_name}': saw {lo.numel()} channels "
                f"along axis {axis}, expected {self.min_val.numel()} as before"
            )
        c = self.averaging_constant
        self.min_val = self.min_val + c * (lo - self.min_val)
        self.max_val = self.max_val + c * (hi - self.max_val)
        return x
