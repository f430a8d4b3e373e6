"""Comparison metrics in one registry, each accumulated by streaming over batches.

A metric is a small state machine: ``init() -> state``, ``update(state, ref, actual)`` once per
batch (ref = the float/reference tensor, actual = the tensor under test), ``finalize(state) ->
float``. The state is a few float64 sums, so memory does not grow with the number of batches,
and the streamed value equals the value on the concatenated batches.

Non-finite policy (all metrics): if ``ref`` or ``actual`` holds a NaN or an infinity in any
batch, the metric is ``nan`` ("cannot judge"), never a silently large or small number.

SQNR (dB) = 10 log10(sum ref^2 / sum (ref - actual)^2), the float reference is the signal:
    noise == 0                  -> +inf  (identical, including both all-zero)
    signal == 0 and noise > 0   -> -inf  (nothing to measure against, everything is error)
Cosine similarity = <ref, actual> / (|ref| |actual|): both norms zero -> 1.0, one zero -> 0.0.
An empty comparison (no elements over all batches) finalizes to ``nan`` for every metric.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = [
    "Metric",
    "METRICS",
    "register_metric",
    "get_metric",
    "compute_metric",
    "sqnr",
    "DEFAULT_METRICS",
    "update_many",
    "moments",
]

State = dict[str, float]


@dataclass(frozen=True)
class Metric:
    """A streaming metric. ``higher_is_better`` orders rows worst-first in reports."""

    name: str
    unit: str
    higher_is_better: bool
    sums: tuple[str, ...]
    batch_sums: Callable[[torch.Tensor, torch.Tensor], dict[str, float]]
    finalize_sums: Callable[[State], float]
    combine: Callable[[float, float], float] = staticmethod(lambda a, b: a + b)
    # Built-in metrics read their sums from the shared moments of ``moments`` instead of
    # computing them from the tensors (one pass for all metrics).
    from_moments: Callable[[dict[str, float]], dict[str, float]] | None = None

    def init(self) -> State:
        """A fresh state (all sums zero, no elements, finite)."""
        return {**{s: 0.0 for s in self.sums}, "count": 0.0, "nonfinite": 0.0}

    def update(self, state: State, ref: torch.Tensor, actual: torch.Tensor) -> None:
        """Fold one batch into ``state``; shapes must match (the error names both)."""
        update_many([self], [state], ref, actual)

    def finalize(self, state: State) -> float:
        """The metric value of everything folded in so far (see the module's policy)."""
        if state["nonfinite"] or state["count"] == 0:
            return math.nan
        return self.finalize_sums(state)


def update_many(
    metrics: list[Metric], states: list[State], ref: torch.Tensor, actual: torch.Tensor
) -> None:
    """Fold one batch into each metric's state, converting and checking the tensors once.

    A non-finite value shows as a non-finite sum of squares (float64 squares of float32 values
    cannot overflow), so the NaN/inf policy costs no separate pass.
    """
    if ref.shape != actual.shape:
        names = ", ".join(m.name for m in metrics)
        raise ValueError(
            f"metric {names}: reference shape {tuple(ref.shape)} != "
            f"actual shape {tuple(actual.shape)}"
        )
    r, a = ref.detach().reshape(-1).double(), actual.detach().reshape(-1).double()
    m = moments(r, a)
    if not (math.isfinite(m["rr"]) and math.isfinite(m["aa"])):
        for state in states:
            state["nonfinite"] = 1.0
        return
    for metric, state in zip(metrics, states, strict=True):
        sums = metric.from_moments(m) if metric.from_moments else metric.batch_sums(r, a)
        for key, value in sums.items():
            state[key] = metric.combine(state[key], value)
        state["count"] += r.numel()


def moments(r: torch.Tensor, a: torch.Tensor) -> dict[str, float]:
    """Sums every built-in metric needs, from flat float64 ``r`` and ``a``, with BLAS dots:
    ``rr`` = <r, r>, ``aa``, ``ra``, ``dd`` = <r - a, r - a>, ``max`` = max |r - a|."""
    d = r - a
    return {
        "rr": float(torch.dot(r, r)),
        "aa": float(torch.dot(a, a)),
        "ra": float(torch.dot(r, a)),
        "dd": float(torch.dot(d, d)),
        "max": float(d.abs().max()) if d.numel() else 0.0,
    }


METRICS: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to the registry under its name and return it (names are unique)."""
    if metric.name in METRICS:
        raise ValueError(f"metric {metric.name!r} is already registered")
    METRICS[metric.name] = metric
    return metric


def get_metric(name: str) -> Metric:
    """The registered metric called ``name``; the error lists the known names."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; registered: {sorted(METRICS)}") from None


def compute_metric(name: str, ref: torch.Tensor, actual: torch.Tensor) -> float:
    """One-shot value of metric ``name`` on a single pair of tensors."""
    metric = get_metric(name)
    state = metric.init()
    metric.update(state, ref, actual)
    return metric.finalize(state)


def _sqnr_final(s: State) -> float:
    if s["noise"] == 0.0:
        return math.inf
    if s["signal"] == 0.0:
        return -math.inf
    return 10.0 * math.log10(s["signal"] / s["noise"])


def _cosine_final(s: State) -> float:
    if s["rr"] == 0.0 and s["aa"] == 0.0:
        return 1.0
    if s["rr"] == 0.0 or s["aa"] == 0.0:
        return 0.0
    return s["ra"] / math.sqrt(s["rr"] * s["aa"])


register_metric(
    Metric(
        name="sqnr",
        unit="dB",
        higher_is_better=True,
        sums=("signal", "noise"),
        batch_sums=lambda r, a: {
            "signal": float((r * r).sum()),
            "noise": float(((r - a) ** 2).sum()),
        },
        finalize_sums=_sqnr_final,
        from_moments=lambda m: {"signal": m["rr"], "noise": m["dd"]},
    )
)
register_metric(
    Metric(
        name="mse",
        unit="",
        higher_is_better=False,
        sums=("sq",),
        batch_sums=lambda r, a: {"sq": float(((r - a) ** 2).sum())},
        finalize_sums=lambda s: s["sq"] / s["count"],
        from_moments=lambda m: {"sq": m["dd"]},
    )
)
register_metric(
    Metric(
        name="max_abs",
        unit="",
        higher_is_better=False,
        sums=("max",),
        batch_sums=lambda r, a: {"max": float((r - a).abs().max()) if r.numel() else 0.0},
        finalize_sums=lambda s: s["max"],
        combine=max,
        from_moments=lambda m: {"max": m["max"]},
    )
)
register_metric(
    Metric(
        name="cosine",
        unit="",
        higher_is_better=True,
        sums=("ra", "rr", "aa"),
        batch_sums=lambda r, a: {
            "ra": float((r * a).sum()),
            "rr": float((r * r).sum()),
            "aa": float((a * a).sum()),
        },
        finalize_sums=_cosine_final,
        from_moments=lambda m: {"ra": m["ra"], "rr": m["rr"], "aa": m["aa"]},
    )
)

DEFAULT_METRICS: tuple[str, ...] = ("sqnr", "mse", "max_abs", "cosine")


def sqnr(ref: torch.Tensor, actual: torch.Tensor) -> float:
    """SQNR in dB of ``actual`` against the signal ``ref`` (policy in the module docstring)."""
    return compute_metric("sqnr", ref, actual)
