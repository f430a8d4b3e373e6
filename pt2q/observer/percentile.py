"""PercentileObserver: the activation range between two percentiles of everything observed.

Keeps HistogramObserver's running histogram and clips at the ``100 - percentile`` and
``percentile`` points of its cumulative counts (linear interpolation inside a bin); the range
is widened to include 0 by the qparam formulas as usual. ``percentile=100`` is min/max.
"""

from __future__ import annotations

from typing import Any

import torch

from pt2q.observer.histogram import HistogramObserver
from pt2q.observer.mse import histogram_qparams

__all__ = ["PercentileObserver", "histogram_percentiles"]


def histogram_percentiles(
    histogram: torch.Tensor, min_val: float, max_val: float, low: float, high: float
) -> tuple[float, float]:
    """Values at fractions ``low`` and ``high`` (in [0, 1]) of the counts in ``histogram``."""
    bins = histogram.numel()
    cum = torch.cumsum(histogram.double(), 0)
    total = float(cum[-1])
    edges = torch.linspace(min_val, max_val, bins + 1, dtype=torch.float64)

    def at(fraction: float) -> float:
        target = fraction * total
        i = min(int(torch.searchsorted(cum, torch.tensor(target, dtype=torch.float64))), bins - 1)
        before = float(cum[i - 1]) if i > 0 else 0.0
        count = float(histogram[i])
        within = (target - before) / count if count > 0 else 0.0
        return float(edges[i] + (edges[i + 1] - edges[i]) * min(max(within, 0.0), 1.0))

    return at(low), at(high)


class PercentileObserver(HistogramObserver):
    """Per-tensor activation observer clipping at the ``percentile`` (and ``100 -
    percentile``) point of the observed values, e.g. 99.99."""

    def __init__(self, percentile: float = 99.99, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 50.0 < float(percentile) <= 100.0:
            raise ValueError(
                f"{type(self).__name__}: percentile must be in (50, 100], got {percentile!r}"
            )
        self.percentile = float(percentile)

    def calculate_qparams(self, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, zero_point) of the percentile range; raises if nothing was observed."""
        if not self.has_observed:
            return super().calculate_qparams()  # raises ObserverNotCalibratedError
        high = self.percentile / 100.0
        lo, hi = histogram_percentiles(
            self.histogram,
            float(self.min_val),
            float(self.max_val),
            1.0 - high,
            high,
        )
        scale, zero_point = histogram_qparams(self, lo, hi)
        return scale, zero_point

    def extra_repr(self) -> str:
        return f"percentile={self.percentile}, " + super().extra_repr()
