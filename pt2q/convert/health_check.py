"""Convert pass: check every activation observer's quantization health and warn, naming the
node, when a range is dominated by outliers or its values collapse into two bins.

Reads :func:`pt2q.health.observer_health` (the one health definition); changes nothing.
"""

from __future__ import annotations

import warnings

from torch.fx import GraphModule, Node

from pt2q.convert.qdq import observer_of
from pt2q.health import COLLAPSED, OUTLIER_DOMINATED, Health, observer_health

__all__ = ["QuantizationHealthWarning", "check_observer_health", "WARNED_FLAGS"]

# Flags that make convert warn; clipping and edge saturation are shown by the debugger only
# (clipping is what MSE / percentile / histogram observers do on purpose).
WARNED_FLAGS = (OUTLIER_DOMINATED, COLLAPSED)


class QuantizationHealthWarning(UserWarning):
    """An activation's quantization range is dominated by outliers or collapses its values."""


def _observed_name(node: Node) -> str:
    src = node.args[0] if node.args else None
    return src.name if isinstance(src, Node) else node.name


def check_observer_health(model: GraphModule) -> dict[str, Health]:
    """Health of every activation observer of ``model`` keyed by the observed node's name;
    emits one ``QuantizationHealthWarning`` listing the nodes whose health has a warned flag."""
    healths: dict[str, Health] = {}
    for node in model.graph.nodes:
        obs = observer_of(model, node)
        if obs is None:
            continue
        health = observer_health(obs)
        if health is not None:
            healths[_observed_name(node)] = health
    bad = {n: h for n, h in healths.items() if any(f in WARNED_FLAGS for f in h.flags)}
    if bad:
        lines = "\n".join(f"  '{name}': {h.summary()}" for name, h in bad.items())
        warnings.warn(
            f"convert_pt2e: {len(bad)} activation range(s) look unhealthy; int8 will lose most "
            f"of their signal:\n{lines}\nKeep these nodes float (quantizer config / "
            "set_module_name(..., None)), use an MSE or percentile observer, or check the "
            "calibration data.",
            QuantizationHealthWarning,
            stacklevel=4,  # warn -> run_pass -> convert_pt2e -> the caller
        )
    return healths
