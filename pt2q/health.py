"""Quantization health: the one definition of how well a quantization range fits a tensor.

Every consumer (``convert_pt2e``'s health warning, the debugger's columns, the accuracy bench)
reads the same :class:`Health` record, computed from values and the affine qparams that map
them to ``[quant_min, quant_max]``. With ``q(x) = clamp(round(x / scale) + zero_point, qmin,
qmax)`` and the representable interval ``[lo_q, hi_q] = [(qmin - zp) * scale, (qmax - zp) *
scale]``:

* ``clipping_ratio``: share of values outside ``[lo_q, hi_q]`` by more than half a step;
* ``busiest_two_bins_share``: share of the non-zero values that fall into the two most
  populated integer bins. Exact zeros (ReLU outputs, padding) are representable in every
  affine range and are left out, so a sparse activation is not called collapsed; a quantized
  attention-mask add, whose real scores all round to the zero point while masked ones sit at
  ``qmin``, scores ~1.0;
* ``range_vs_percentile``: ``(max - min) / (p99.9 - p0.1)`` of the values, ``inf`` when the
  central 99.8 % are one value (the range is then spent entirely on outliers);
* ``zero_point_saturation``: share of the non-zero values that quantize to ``qmin`` or ``qmax``
  (the range edges; a healthy min/max range holds a handful there).

``flags`` names what is wrong, empty when healthy; thresholds are a :class:`HealthThresholds`
argument. Values are summarised, never kept whole: :func:`observer_health` reads the bounded
sample an activation observer keeps (``pt2q.observer.sample``, ``SAMPLE_SIZE`` values) plus its
exact min/max; :func:`tensor_health` works on any tensor (at most ``MAX_VALUES`` of its values,
drawn the same way, and its exact min/max).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pt2q.observer.sample import draw_sample

__all__ = [
    "Health",
    "HealthThresholds",
    "DEFAULT_THRESHOLDS",
    "OUTLIER_DOMINATED",
    "COLLAPSED",
    "CLIPPING",
    "SATURATED",
    "MAX_VALUES",
    "observer_health",
    "tensor_health",
    "values_health",
]

# The flags, as stable strings (the debugger shows them as they are).
OUTLIER_DOMINATED = "range dominated by outliers"
COLLAPSED = "values collapse into two bins"
CLIPPING = "range clips many values"
SATURATED = "many values at the range edges"

MAX_VALUES = 1 << 20  # tensor_health looks at most at this many values (plus exact min/max)
_LOW_PERCENTILE = 0.001
_HIGH_PERCENTILE = 0.999


@dataclass(frozen=True)
class HealthThresholds:
    """When a :class:`Health` number raises its flag (all comparisons are ``>``)."""

    outlier_range_ratio: float = 10.0  # range_vs_percentile -> OUTLIER_DOMINATED
    collapsed_share: float = 0.9  # busiest_two_bins_share -> COLLAPSED
    clipping_ratio: float = 0.01  # clipping_ratio -> CLIPPING
    saturation: float = 0.05  # zero_point_saturation -> SATURATED

    def __post_init__(self) -> None:
        for name in ("collapsed_share", "clipping_ratio", "saturation"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"HealthThresholds.{name} must be in [0, 1], got {value!r}")
        if not self.outlier_range_ratio >= 1.0:
            raise ValueError(
                "HealthThresholds.outlier_range_ratio must be >= 1 (range / central range), "
                f"got {self.outlier_range_ratio!r}"
            )


DEFAULT_THRESHOLDS = HealthThresholds()


@dataclass(frozen=True)
class Health:
    """How well one quantization range fits the values it quantizes (see the module doc)."""

    clipping_ratio: float
    busiest_two_bins_share: float
    range_vs_percentile: float
    zero_point_saturation: float
    flags: tuple[str, ...]
    observed_min: float
    observed_max: float
    values: int  # how many values the shares were measured on (a sample, for observers)

    @property
    def healthy(self) -> bool:
        return not self.flags

    def summary(self) -> str:
        """One line: the four numbers, then the flags."""
        text = (
            f"clip {self.clipping_ratio:.2%}, busiest 2 bins {self.busiest_two_bins_share:.1%}, "
            f"range/p99.9 {self.range_vs_percentile:.3g}, at edges "
            f"{self.zero_point_saturation:.1%} (range [{self.observed_min:.4g}, "
            f"{self.observed_max:.4g}], {self.values} values)"
        )
        return text + (": " + "; ".join(self.flags) if self.flags else "")


def _flags(h: dict[str, float], t: HealthThresholds, distinct_in_busiest: int) -> tuple[str, ...]:
    flags: list[str] = []
    if h["range_vs_percentile"] > t.outlier_range_ratio:
        flags.append(OUTLIER_DOMINATED)
    # A tensor of two or fewer distinct values (a 0/-inf mask, a constant) is exact when it
    # sits in two bins: only flag collapse when the bins merge genuinely different values.
    if h["busiest_two_bins_share"] > t.collapsed_share and distinct_in_busiest > 2:
        flags.append(COLLAPSED)
    if h["clipping_ratio"] > t.clipping_ratio:
        flags.append(CLIPPING)
    if h["zero_point_saturation"] > t.saturation:
        flags.append(SATURATED)
    return tuple(flags)


def values_health(
    values: torch.Tensor,
    scale: torch.Tensor | float,
    zero_point: torch.Tensor | float,
    quant_min: int,
    quant_max: int,
    observed_min: float | None = None,
    observed_max: float | None = None,
    thresholds: HealthThresholds = DEFAULT_THRESHOLDS,
) -> Health:
    """Health of ``values`` (any shape; a sample of the tensor) under per-tensor qparams
    (use :func:`tensor_health` for per-channel ones). ``observed_min`` / ``observed_max``: the exact
    extremes of the whole tensor when ``values`` is a sample (default: the values' own)."""
    v = values.detach().reshape(-1).double()
    if v.numel() == 0:
        raise ValueError("values_health: got no values (an observer that never saw data?)")
    s = torch.as_tensor(scale, dtype=torch.float64).reshape(-1)
    zp = torch.as_tensor(zero_point, dtype=torch.float64).reshape(-1)
    if s.numel() != 1 or zp.numel() != 1:
        raise ValueError(
            f"values_health: expected one scale and zero point, got {s.numel()} and "
            f"{zp.numel()}; use tensor_health(x, ..., axis=...) for per-channel qparams"
        )
    lo = float(v.min()) if observed_min is None else min(float(observed_min), float(v.min()))
    hi = float(v.max()) if observed_max is None else max(float(observed_max), float(v.max()))
    q_unclamped = torch.round(v / s) + zp
    clipped = ((q_unclamped < quant_min) | (q_unclamped > quant_max)).double()
    q = q_unclamped.clamp(quant_min, quant_max)
    nonzero = v != 0
    nz = int(nonzero.sum())
    busiest = 0.0
    saturation = 0.0
    distinct = 0
    if nz:
        qnz = q[nonzero]
        bins, counts = torch.unique(qnz, return_counts=True)
        top = torch.topk(counts, min(2, counts.numel()))
        busiest = float(top.values.sum()) / nz
        in_top = torch.isin(qnz, bins[top.indices])
        distinct = int(torch.unique(v[nonzero][in_top]).numel())
        saturation = float(((qnz == quant_min) | (qnz == quant_max)).double().mean())
    ratio = _range_ratio(v, lo, hi)
    numbers = {
        "clipping_ratio": float(clipped.mean()),
        "busiest_two_bins_share": busiest,
        "range_vs_percentile": ratio,
        "zero_point_saturation": saturation,
    }
    return Health(
        **numbers,
        flags=_flags(numbers, thresholds, distinct),
        observed_min=lo,
        observed_max=hi,
        values=int(v.numel()),
    )


def tensor_health(
    x: torch.Tensor,
    scale: torch.Tensor | float,
    zero_point: torch.Tensor | float,
    quant_min: int,
    quant_max: int,
    axis: int | None = None,
    thresholds: HealthThresholds = DEFAULT_THRESHOLDS,
) -> Health:
    """Health of tensor ``x`` under its qparams: per tensor (``axis=None``, 0-d/1-element
    ``scale``) or per channel along ``axis`` (``scale``/``zero_point`` of size ``x.shape[axis]``;
    bins are then counted per channel). Looks at up to ``MAX_VALUES`` values and the exact
    min/max."""
    xf = x.detach().float()
    if xf.numel() == 0:
        raise ValueError(f"tensor_health: empty tensor of shape {tuple(x.shape)}")
    lo, hi = (float(t) for t in torch.aminmax(xf))
    if axis is None:
        values = xf if xf.numel() <= MAX_VALUES else draw_sample(xf, MAX_VALUES, 0.0)
        return values_health(values, scale, zero_point, quant_min, quant_max, lo, hi, thresholds)
    s = torch.as_tensor(scale, dtype=torch.float64).reshape(-1)
    zp = torch.as_tensor(zero_point, dtype=torch.float64).reshape(-1)
    channels = xf.shape[axis]
    if s.numel() != channels or zp.numel() != channels:
        raise ValueError(
            f"tensor_health: axis={axis} has {channels} channels but got {s.numel()} scales and "
            f"{zp.numel()} zero points"
        )
    # Per channel: measure each channel on its own qparams, merge the shares weighted by size.
    per = xf.movedim(axis, 0).reshape(channels, -1)  # (C, everything else)
    healths = [
        values_health(
            per[c], float(s[c]), float(zp[c]), quant_min, quant_max, thresholds=thresholds
        )
        for c in range(channels)
    ]
    return _merge(healths, lo, hi, thresholds, _range_ratio(xf, lo, hi))


def _range_ratio(x: torch.Tensor, lo: float, hi: float) -> float:
    """(hi - lo) / (p99.9 - p0.1) of ``x`` (or of up to MAX_VALUES of its values)."""
    values = x.reshape(-1) if x.numel() <= MAX_VALUES else draw_sample(x, MAX_VALUES, 0.0)
    probs = torch.tensor([_LOW_PERCENTILE, _HIGH_PERCENTILE], dtype=values.dtype)
    p_lo, p_hi = torch.quantile(values, probs).tolist()
    central = p_hi - p_lo
    return (hi - lo) / central if central > 0 else (1.0 if hi == lo else float("inf"))


def _merge(
    healths: list[Health], lo: float, hi: float, thresholds: HealthThresholds, ratio: float
) -> Health:
    """Size-weighted mean of per-channel shares; ``ratio`` is the whole tensor's."""
    total = sum(h.values for h in healths)

    def mean(name: str) -> float:
        return sum(getattr(h, name) * h.values for h in healths) / total

    numbers = {
        "clipping_ratio": mean("clipping_ratio"),
        "busiest_two_bins_share": mean("busiest_two_bins_share"),
        "range_vs_percentile": ratio,
        "zero_point_saturation": mean("zero_point_saturation"),
    }
    # Flags from the merged numbers (a few values at each channel's edges are normal);
    # collapse also needs a channel whose busiest bins merged genuinely different values.
    distinct = 3 if any(COLLAPSED in h.flags for h in healths) else 0
    flags = set(_flags(numbers, thresholds, distinct))
    order = (OUTLIER_DOMINATED, COLLAPSED, CLIPPING, SATURATED)
    return Health(
        **numbers,
        flags=tuple(f for f in order if f in flags),
        observed_min=lo,
        observed_max=hi,
        values=total,
    )


def _sampling_observer(observer: nn.Module) -> nn.Module:
    """The module that keeps the sample: a fake-quantizer's wrapped observer, else itself."""
    inner = getattr(observer, "activation_post_process", None)
    return inner if isinstance(inner, nn.Module) else observer


def observer_health(
    observer: nn.Module, thresholds: HealthThresholds = DEFAULT_THRESHOLDS
) -> Health | None:
    """Health of an activation observer (or fake-quantizer) from its value sample, exact
    min/max and its qparams. ``None`` when there is nothing to judge: no sample (weights,
    dynamic or float observers, never calibrated) or per-channel activation qparams (the
    sample keeps no channel index)."""
    source = _sampling_observer(observer)
    sample: Any = getattr(source, "health_sample", None)
    if not isinstance(sample, torch.Tensor) or sample.numel() == 0:
        return None
    if not getattr(observer, "has_observed", False):
        return None
    scale, zero_point = observer.calculate_qparams()  # type: ignore[operator]
    if torch.as_tensor(scale).numel() != 1:
        return None
    lo, hi = None, None
    min_val, max_val = getattr(source, "min_val", None), getattr(source, "max_val", None)
    if isinstance(min_val, torch.Tensor) and min_val.numel() == 1:
        lo, hi = float(min_val), float(max_val)  # type: ignore[arg-type]
    return values_health(
        sample,
        scale,
        zero_point,
        int(observer.quant_min),  # type: ignore[arg-type]
        int(observer.quant_max),  # type: ignore[arg-type]
        lo,
        hi,
        thresholds,
    )
