"""Health columns: how well each quantized output's range fits the float values it stands for.

For a group whose output goes through a static per-tensor ``quantize`` (``GraphGroups.chain``),
``pt2q.health.values_health`` judges the *float* program's value at that point (what the range
was meant to hold) under the quantize's literal qparams, on ``SAMPLE`` values drawn as the
observers draw theirs plus the exact min/max. Dynamic (run-time qparams) and unquantized outputs
get no health. Measured on the first batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.fx import Node

from pt2q.debugger.groups import GraphGroups
from pt2q.health import Health, values_health
from pt2q.observer.sample import draw_sample
from pt2q.qdq.views import out_q

__all__ = ["HEALTH_COLUMNS", "OutputHealth", "output_health"]

SAMPLE = 1 << 14  # values judged per tensor (plus its exact min/max)
HEALTH_COLUMNS: tuple[str, ...] = (
    "clipping_ratio",
    "busiest_two_bins_share",
    "range_vs_percentile",
    "zero_point_saturation",
)


@dataclass(frozen=True)
class OutputHealth:
    """The four health numbers of one quantized output and its flags."""

    values: dict[str, float]
    flags: tuple[str, ...]

    @classmethod
    def of(cls, health: Health) -> OutputHealth:
        return cls({c: float(getattr(health, c)) for c in HEALTH_COLUMNS}, health.flags)


def output_health(
    groups: GraphGroups, handles: Sequence[int], float_values: dict[int, Any]
) -> dict[int, OutputHealth]:
    """{handle: OutputHealth} for each handle whose quantized output has static qparams."""
    out: dict[int, OutputHealth] = {}
    for h in handles:
        chain = groups.chain.get(h, [])
        value = float_values.get(h)
        if len(chain) != 2 or not isinstance(value, torch.Tensor) or value.numel() == 0:
            continue
        q = out_q(chain[0])
        if q is None or isinstance(q.scale, Node) or isinstance(q.zero_point, Node):
            continue
        lo, hi = (float(v) for v in torch.aminmax(value.detach().float()))
        sample = draw_sample(value, SAMPLE, 0.0)
        health = values_health(sample, q.scale, float(q.zero_point), q.qmin, q.qmax, lo, hi)
        out[h] = OutputHealth.of(health)
    return out
