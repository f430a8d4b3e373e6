"""HistogramObserver: a running histogram and an L2-error search for the clipping range.

Same statistics and the same search as torch's / torchao 0.18's ``HistogramObserver`` (the
caffe2 ``NormMinimization`` greedy walk), computed faster:

* ``forward`` bins each batch with one fused index computation and ``torch.bincount`` (no
  ``histc``), and re-bins the running histogram only when the range grows (``upsample_rate``
  sub-bins per bin, as torchao).
* ``calculate_qparams`` replays torchao's greedy walk without its 1e-5-step Python loop: the
  walk's path of candidate ``(start_bin, end_bin)`` ranges depends only on the cumulative
  histogram, so it is generated first (a few thousand candidates at most, one per bin moved),
  then the L2 quantization errors of a block of candidates are computed at once as a
  ``(candidates, bins)`` tensor, stopping at the first error that goes up (torchao's ``break``).
  The arithmetic mirrors torchao's float32 formulas, so the chosen range is the same.

Unlike torchao, NaN/inf raise (``NonFiniteObservationError`` naming the node) instead of being
dropped with a warning, and ``calculate_qparams`` before any data raises instead of returning
scale 1.0.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import operator
import struct
from collections.abc import Iterator
from typing import Any

import torch

from pt2q.observer.qparams import calculate_qparams as qparams_from_range
from pt2q.observer.uniform import UniformObserverBase

__all__ = ["HistogramObserver", "bin_counts", "l2_range_search", "rebin_histogram"]

_STEP = 1e-5  # quantile granularity of torchao's walk
_N_STEPS = int(round(1.0 / _STEP)) + 2  # the walk ends before alpha + (1 - beta) passes 1
_FIRST_BLOCK = 8  # candidates whose errors are computed in one (block, bins) tensor; doubles
_MAX_BLOCK = 256


def _f32(value: float) -> float:
    """``value`` rounded to float32 (torchao compares float32 cSum with a float32 threshold)."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


@functools.cache
def _alpha_beta() -> tuple[list[float], list[float]]:
    """torchao's alpha/beta after k steps, accumulated with the same float64 additions."""
    steps = itertools.repeat(_STEP, _N_STEPS)
    alpha = list(itertools.accumulate(steps, operator.add, initial=0.0))
    beta = list(itertools.accumulate(itertools.repeat(_STEP, _N_STEPS), operator.sub, initial=1.0))
    return alpha, beta


def _walk_candidates(csum: list[float], total: float) -> Iterator[tuple[int, int]]:
    """The ``(start_bin, end_bin)`` ranges torchao's greedy walk visits, in order (lazily).

    torchao's loop, per 1e-5 step: ``l`` = first bin (>= start) whose cumulative count reaches
    ``(alpha + step) * total``, ``r`` = last bin (<= end) whose cumulative count stays within
    ``(beta - step) * total``; move the side that gains more bins (ties move the end). Steps
    that change neither bin are skipped in bulk (bisect over the step count), every other step
    yields a candidate, so there are at most ``2 * bins`` of them.
    """
    alpha, beta = _alpha_beta()
    bins = len(csum)
    i = j = 0
    start, end = 0, bins - 1
    while alpha[i] < beta[j]:
        left = max(start, min(bisect.bisect_left(csum, _f32(alpha[i + 1] * total)), end))
        right = max(start, min(bisect.bisect_right(csum, _f32(beta[j + 1] * total)) - 1, end))
        if left - start > end - right:
            i += 1
            start = left  # changed: left > start
        elif right < end:
            j += 1
            end = right
        else:
            # Neither bin moves: torchao steps beta until the end bin would move, i.e. until
            # the threshold drops below csum[end].
            if start >= end:
                return
            top = csum[end]
            j = bisect.bisect_left(
                range(_N_STEPS), True, lo=j, key=lambda k: _f32(beta[k + 1] * total) < top
            )
            if j >= _N_STEPS:
                return
            continue
        yield start, end


def _l2_errors(
    histogram: torch.Tensor, bin_width: float, dst_nbins: int, cands: torch.Tensor
) -> torch.Tensor:
    """L2 quantization error of each candidate range (torchao's ``_compute_quantization_error``).

    ``cands``: (C, 2) int64 (start_bin, end_bin). Each source bin's mass is spread uniformly
    over the bin and measured against the centres of the ``dst_nbins`` destination bins
    covering ``[start_bin, end_bin + 1)``. Returns (C,) float32.
    """
    bins = histogram.numel()
    start = cands[:, :1]  # (C, 1)
    width = (cands[:, 1:] - start + 1).to(torch.float64)
    dst_w64 = bin_width * width / dst_nbins  # (C, 1), float64 like torchao's Python floats
    dst_w = dst_w64.to(torch.float32)
    half = (dst_w64 / 2).to(torch.float32)
    bw = torch.tensor(bin_width, dtype=torch.float32, device=histogram.device)
    src = torch.arange(bins, device=histogram.device)  # (bins,)
    begin = (src - start).to(torch.float32) * bw  # (C, bins)
    end = begin + bw
    dst_of_begin = torch.div(begin, dst_w, rounding_mode="floor").clamp_(0, dst_nbins - 1)
    dst_of_end = torch.div(end, dst_w, rounding_mode="floor").clamp_(0, dst_nbins - 1)
    density = histogram / bw  # (bins,)

    def cube(t: torch.Tensor) -> torch.Tensor:
        return t * t * t

    d_begin = begin - (dst_of_begin + 0.5) * dst_w
    norm = density * ((cube(half) - cube(d_begin)) / 3)
    norm = norm + (dst_of_end - dst_of_begin - 1) * (density * ((cube(half) - cube(-half)) / 3))
    d_end = end - (dst_of_end * dst_w + half)
    norm = norm + density * ((cube(d_end) - cube(-half)) / 3)
    errors = norm.sum(dim=1)
    return torch.where(dst_w64[:, 0] == 0.0, torch.zeros_like(errors), errors)


def l2_range_search(
    histogram: torch.Tensor, min_val: torch.Tensor, max_val: torch.Tensor, dst_nbins: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The clipping range ``(new_min, new_max)`` torchao's ``_non_linear_param_search`` picks.

    ``histogram``: (bins,) float32 counts over ``[min_val, max_val]`` (0-d float32 tensors).
    Walks candidate ranges in torchao's order and keeps the last one before the L2 error first
    increases. Returns 0-d float32 tensors.
    """
    bins = histogram.numel()
    bin_width = (float(max_val) - float(min_val)) / bins
    csum: list[float] = torch.cumsum(histogram, dim=0).tolist()
    best = _last_before_rise(
        _walk_candidates(csum, float(histogram.sum())), histogram, bin_width, dst_nbins
    )
    width = (max_val - min_val) / bins  # float32, as torchao
    return min_val + width * best[0], min_val + width * (best[1] + 1)


def _last_before_rise(
    walk: Iterator[tuple[int, int]], histogram: torch.Tensor, bin_width: float, dst_nbins: int
) -> tuple[int, int]:
    """The last candidate of ``walk`` before the error first goes up (torchao's ``break``).

    Errors are computed for blocks of 8, 16, ... candidates at once; the walk is consumed only
    as far as needed (the rise usually comes within the first few candidates).
    """
    best = (0, histogram.numel() - 1)
    best_error = float("inf")
    size = _FIRST_BLOCK
    while block := list(itertools.islice(walk, size)):
        cands = torch.tensor(block, device=histogram.device)  # (C, 2)
        errors = _l2_errors(histogram, bin_width, dst_nbins, cands).tolist()
        for cand, err in zip(block, errors, strict=True):
            if err > best_error:
                return best
            best, best_error = cand, err
        size = min(2 * size, _MAX_BLOCK)
    return best


# x * k - lo * k loses one bin of precision when |lo| * k nears 2**23 (float32's 24-bit
# significand); below this the one-pass form is exact to a small fraction of a bin.
_ONE_PASS_LIMIT = 2.0**20


def bin_counts(x: torch.Tensor, bins: int, lo: float, hi: float) -> torch.Tensor:
    """(bins,) float32 counts of ``x`` over [lo, hi], as ``torch.histc`` bins them."""
    if hi <= lo:
        return torch.histc(x, bins, min=lo, max=hi)
    # bin = floor((x - lo) * bins / (hi - lo)) in one pass (x * k - lo * k); truncation is
    # floor as the value is >= 0 up to rounding. x == hi (and rounding) lands past the last
    # bin: counted in an overflow slot and folded back, instead of a clamp pass over x.
    k = bins / (hi - lo)
    if abs(lo) * k < _ONE_PASS_LIMIT:
        pos = torch.add(torch.tensor(-lo * k, device=x.device), x, alpha=k)
    else:
        # A range narrow next to its distance from zero (e.g. 3.0 + 1e-7 * noise): x * k and
        # lo * k are huge and cancel in float32 (positions negative or past int16); x - lo is
        # exact for such close values, so subtract first.
        pos = torch.sub(x, lo).mul_(k)
    idx = pos.to(torch.int16 if bins < 2**15 else torch.int32).flatten()
    counts = torch.bincount(idx, minlength=bins + 1).to(torch.float32)
    hist = counts[:bins].clone()
    hist[-1] += counts[bins:].sum()
    return hist


def rebin_histogram(
    hist: torch.Tensor, old_lo: float, old_hi: float, lo: float, hi: float, upsample_rate: int
) -> torch.Tensor:
    """``hist`` (counts over [old_lo, old_hi]) moved onto the same number of bins over the
    wider [lo, hi].

    Each bin is split in ``upsample_rate`` equal parts placed at their centres (torchao's
    ``_upscale_histogram``). Used when the running range grows and to merge histograms of
    several processes (``pt2q.observer.merge``).
    """
    bins = hist.numel()
    if old_hi <= old_lo:
        return bin_counts(torch.tensor([old_lo], device=hist.device), bins, lo, hi) * hist.sum()
    n = bins * upsample_rate
    parts = hist.repeat_interleave(upsample_rate) / upsample_rate  # (n,)
    sub = (old_hi - old_lo) / n
    centres = torch.linspace(old_lo, old_hi, n + 1, device=hist.device)[:-1] + 0.5 * sub
    edges = torch.linspace(lo, hi, bins + 1, device=hist.device)
    idx = (torch.bucketize(centres, edges, right=True) - 1).clamp_(0, bins - 1)
    return torch.bincount(idx, weights=parts, minlength=bins).to(torch.float32)


class HistogramObserver(UniformObserverBase):
    """Per-tensor observer keeping a ``bins``-bin histogram over the running [min, max].

    ``calculate_qparams`` searches the range minimising the L2 quantization error over the
    histogram (clipping outliers), then applies the affine/symmetric formulas to it.
    """

    def __init__(self, bins: int = 2048, upsample_rate: int = 16, **kwargs: Any) -> None:
        kwargs.pop("ch_axis", None)  # a per-tensor spec may carry ch_axis=None
        super().__init__(**kwargs)
        name = type(self).__name__
        if self.qscheme not in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            raise ValueError(f"{name}: qscheme must be per-tensor, got {self.qscheme}")
        if self.is_dynamic:
            raise ValueError(f"{name}: is_dynamic=True is not supported (use PlaceholderObserver)")
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ValueError(f"{name}: bins must be a positive int, got {bins!r}")
        if (
            isinstance(upsample_rate, bool)
            or not isinstance(upsample_rate, int)
            or upsample_rate < 1
        ):
            raise ValueError(f"{name}: upsample_rate must be a positive int, got {upsample_rate!r}")
        self.bins = bins
        self.upsample_rate = upsample_rate
        self.dst_nbins = 2 ** torch.iinfo(self.dtype).bits
        self.register_buffer("histogram", torch.zeros(bins))
        self.register_buffer("min_val", torch.tensor(float("inf")))
        self.register_buffer("max_val", torch.tensor(float("-inf")))

    def _bin(self, x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
        return bin_counts(x, self.bins, lo, hi)

    def _rebin(self, old_lo: float, old_hi: float, lo: float, hi: float) -> torch.Tensor:
        hist: torch.Tensor = self.histogram
        return rebin_histogram(hist, old_lo, old_hi, lo, hi, self.upsample_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() == 0:
            return x
        xf = x.detach().float()
        lo_t, hi_t = torch.aminmax(xf)
        self._check_finite_stats(x, lo_t, hi_t)
        x_min, x_max = float(lo_t), float(hi_t)
        if not self.has_observed:
            self.histogram = self._bin(xf, x_min, x_max)
            self.min_val, self.max_val = lo_t.clone(), hi_t.clone()
            return x
        old_lo, old_hi = float(self.min_val), float(self.max_val)
        lo, hi = min(old_lo, x_min), max(old_hi, x_max)
        update = self._bin(xf, lo, hi)
        if lo == old_lo and hi == old_hi:
            self.histogram = self.histogram + update
        else:
            self.histogram = update + self._rebin(old_lo, old_hi, lo, hi)
            self.min_val = torch.minimum(self.min_val, lo_t)
            self.max_val = torch.maximum(self.max_val, hi_t)
        return x

    def calculate_qparams(self, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, zero_point) of the L2-optimal clipping range; raises if nothing was observed."""
        if not self.has_observed:
            return super().calculate_qparams()  # raises ObserverNotCalibratedError
        hist: torch.Tensor = self.histogram
        if hist.numel() != self.bins:
            raise ValueError(
                f"{type(self).__name__} at node '{self.node_name}': histogram has "
                f"{hist.numel()} bins, expected bins={self.bins}"
            )
        new_min, new_max = l2_range_search(
            hist,
            self.min_val,
            self.max_val,
            self.dst_nbins,
        )
        return qparams_from_range(
            new_min,
            new_max,
            self.quant_min,
            self.quant_max,
            self.dtype,
            self.qscheme,
            self.eps,
        )

    def extra_repr(self) -> str:
        return f"bins={self.bins}, upsample_rate={self.upsample_rate}, " + super().extra_repr()
