"""Before q/dq insertion: fill constant observers, refuse uncalibrated activation observers."""

from __future__ import annotations

from typing import Any

from torch.fx import GraphModule, Node

from pt2q.constants import constant_nodes, evaluate_constant
from pt2q.convert.qdq import observer_of
from pt2q.errors import CalibrationError
from pt2q.observer.derived import DerivedQParamsObserver

__all__ = ["observe_constants", "check_calibrated"]


def observe_constants(model: GraphModule) -> bool:
    """Run observers of constants (weights, folded biases) on their value if they saw nothing,
    so a weight's qparams never depend on whether calibration ran. Returns whether any ran."""
    const = constant_nodes(model)
    cache: dict[Node, Any] = {}
    ran = False
    for node in model.graph.nodes:
        obs = observer_of(model, node)
        if obs is None or getattr(obs, "has_observed", True):
            continue
        src = node.args[0]
        if isinstance(src, Node) and src in const:
            obs(evaluate_constant(model, src, cache))
            ran = True
    return ran


def check_calibrated(model: GraphModule) -> None:
    """Raise CalibrationError naming every observer node that never saw data."""
    missing: list[str] = []
    for node in model.graph.nodes:
        obs = observer_of(model, node)
        if obs is None or getattr(obs, "has_observed", True) or getattr(obs, "is_dynamic", False):
            continue
        if isinstance(obs, DerivedQParamsObserver):  # its sources are reported themselves
            continue
        src = node.args[0]
        src_name = src.name if isinstance(src, Node) else repr(src)
        missing.append(f"'{node.target}' observing '{src_name}' ({type(obs).__name__})")
    if missing:
        raise CalibrationError(
            f"convert_pt2e: {len(missing)} observer(s) never saw data, so their qparams would be "
            "arbitrary defaults: " + ", ".join(missing) + ". Run calibration inputs through the "
            "prepared model (prepared(*example_inputs)) before convert_pt2e."
        )
