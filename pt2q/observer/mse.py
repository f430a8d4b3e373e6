"""MSEObserver: the activation range that minimises the expected quantization MSE.

Keeps HistogramObserver's running histogram (``bins`` bins over the running [min, max]) and
replaces its greedy L2 walk with an exhaustive grid search. For a candidate range [lo, hi] with
step ``s = (hi - lo) / (quant_max - quant_min)`` the expected squared error of the histogram is::

    sum over bins inside [lo, hi]   count * s**2 / 12             (rounding, uniform noise)
  + sum over bins outside           count * (centre - edge)**2    (clipping)

Candidates: ``lo = min(min_val, 0) * a``, ``hi = max(max_val, 0) * b`` for ``a, b`` on a grid
of ``grid`` shrink factors in (0, 1] (affine: all ``grid**2`` pairs; symmetric: ``hi = -lo``,
``grid`` candidates), evaluated at once as a (candidates, bins) tensor. The winner goes
through the usual qparam formulas (``pt2q.observer.qparams``). Per tensor only, like
HistogramObserver.
"""

from __future__ import annotations

from typing import Any

import torch

from pt2q.observer.histogram import HistogramObserver
from pt2q.observer.qparams import calculate_qparams as qparams_from_range

__all__ = ["MSEObserver", "mse_range_search", "histogram_qparams"]

_SYMMETRIC = (torch.per_tensor_symmetric, torch.per_channel_symmetric)


def mse_range_search(
    histogram: torch.Tensor,
    min_val: float,
    max_val: float,
    levels: int,
    symmetric: bool,
    grid: int = 64,
) -> tuple[float, float]:
    """The (lo, hi) minimising the expected MSE of ``histogram`` (counts over [min_val,
    max_val]) quantized to ``levels`` steps (see the module doc)."""
    bins = histogram.numel()
    hist = histogram.double()
    width = (max_val - min_val) / bins
    centres = min_val + width * (torch.arange(bins, dtype=torch.float64) + 0.5)  # (bins,)
    shrink = torch.linspace(1.0 / grid, 1.0, grid, dtype=torch.float64)  # (grid,)
    lo_edge, hi_edge = min(min_val, 0.0), max(max_val, 0.0)
    if symmetric:
        hi = max(-lo_edge, hi_edge) * shrink
        lo = -hi
    else:
        lo = (lo_edge * shrink)[:, None].expand(grid, grid).reshape(-1)
        hi = (hi_edge * shrink)[None, :].expand(grid, grid).reshape(-1)
    step = (hi - lo) / levels  # (C,)
    below = (lo[:, None] - centres).clamp(min=0)  # (C, bins) distance outside the range
    above = (centres - hi[:, None]).clamp(min=0)
    inside = (below == 0) & (above == 0)
    err = torch.where(inside, step[:, None] ** 2 / 12, below**2 + above**2) @ hist  # (C,)
    best = int(torch.argmin(err))
    return float(lo[best]), float(hi[best])


def histogram_qparams(obs: HistogramObserver, lo: float, hi: float) -> tuple[torch.Tensor, ...]:
    """``obs``'s qparam formulas applied to the range [lo, hi]."""
    return qparams_from_range(
        torch.tensor(lo, dtype=torch.float32),
        torch.tensor(hi, dtype=torch.float32),
        obs.quant_min,
        obs.quant_max,
        obs.dtype,
        obs.qscheme,
        obs.eps,
    )


class MSEObserver(HistogramObserver):
    """Per-tensor activation observer whose range minimises the expected quantization MSE
    over the observed histogram (see the module doc). ``grid``: shrink factors per side."""

    def __init__(self, grid: int = 64, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 2:
            raise ValueError(f"{type(self).__name__}: grid must be an int >= 2, got {grid!r}")
        self.grid = grid

    def calculate_qparams(self, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, zero_point) of the MSE-optimal range; raises if nothing was observed."""
        if not self.has_observed:
            return super().calculate_qparams()  # raises ObserverNotCalibratedError
        lo, hi = mse_range_search(
            self.histogram,
            float(self.min_val),
            float(self.max_val),
            self.quant_max - self.quant_min,
            self.qscheme in _SYMMETRIC,
            self.grid,
        )
        scale, zero_point = histogram_qparams(self, lo, hi)
        return scale, zero_point

    def extra_repr(self) -> str:
        return f"grid={self.grid}, " + super().extra_repr()
