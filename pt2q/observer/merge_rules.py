"""How the statistics of several copies of one observer combine: a rule per observer class.

Calibration split over processes (``pt2q.distributed.sync_observers``) or jobs
(``merge_observer_state_dicts``) gives N copies of every observer, each fed a shard of the data.
A :class:`MergeRule` turns the N copies' buffers into the buffers one observer would hold had it
seen all the data:

======================================  ==========================================================
observer class                          rule
======================================  ==========================================================
MinMaxObserver, PerChannelMinMaxObs.,   min of the mins, max of the maxes (elementwise): exact
AffineQuantizedMinMaxObserver (blocks)
MovingAverage(PerChannel)MinMaxObs.,    mean of the copies' averages (elementwise), see below
AffineQuantizedMovingAverageMinMaxObs.
HistogramObserver                       union range; each histogram re-binned onto it
                                        (``rebin_histogram``) and the counts summed
FixedQParamsObserver                    nothing to merge: the copies must agree
FakeQuantize (and subclasses)           switches must agree; scale / zero point are recomputed
                                        from the merged observer after loading (if enabled)
FixedQParamsFakeQuantize (FakeQuant.    the copies must agree
Base)
AffineQuantizedPlaceholderObserver      nothing observed (dynamic): the first copy's buffers
any other ObserverBase without buffers  nothing to merge (placeholder, derived, ...)
======================================  ==========================================================

Copies that observed nothing (a shard that never reached the node) are left out. A moving
average depends on the order of the batches, which a split run does not have: the merged value
is the unweighted mean of the copies' averages, i.e. each copy's estimate of the stationary
range counts once (give every process the same number of batches, as ``DistributedSampler``
does). Histogram merging re-bins like a single observer does when its range grows, so the
result equals single-process calibration only up to re-binning (qparams within
``pt2q.tolerances.MERGED_HISTOGRAM_VS_SINGLE_PROCESS_STEPS``).

Rules are looked up along the observer's MRO; a rule names the buffers it merges and an
observer with other buffers is refused, so a new observer class with new state needs its own
:func:`register_merge_rule` (the affine observers register theirs next to their class).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pt2q.observer.base import ObserverBase

__all__ = [
    "MergeRule",
    "ObserverMergeError",
    "class_key",
    "register_merge_rule",
    "rule_for",
    "rule_by_key",
    "own_buffer_names",
]

State = dict[str, torch.Tensor]


class ObserverMergeError(ValueError):
    """Observer states that cannot be merged (different shapes, classes, settings, or an
    observer class without a merge rule)."""


@dataclass(frozen=True)
class MergeRule:
    """How N states of one observer class combine.

    ``buffers``: the observer's own persistent buffers (not its submodules') the rule merges.
    ``merge(states, config)``: the merged buffers from the N states (same keys as ``buffers``).
    ``config``: observer attributes the merge needs (saved in the state dict's metadata).
    ``refresh(module)``: run after merged statistics are loaded into a module (optional).
    """

    buffers: tuple[str, ...]
    merge: Callable[[Sequence[State], dict[str, Any]], State]
    config: tuple[str, ...] = ()
    refresh: Callable[[nn.Module], None] | None = field(default=None)


def _observed(states: Sequence[State]) -> list[State]:
    """States whose ``min_val <= max_val`` (a fresh observer starts with +inf / -inf or empty)."""
    return [
        s for s in states if s["min_val"].numel() > 0 and bool((s["min_val"] <= s["max_val"]).all())
    ]


def _check_same_shape(states: Sequence[State], name: str) -> None:
    shapes = {tuple(s[name].shape) for s in states}
    if len(shapes) > 1:
        raise ObserverMergeError(
            f"'{name}' has different shapes across the states: {sorted(shapes)} (the copies "
            "observed tensors with different channel counts; prepare every copy from the same "
            "exported model and quantizer)"
        )


def merge_min_max(states: Sequence[State], config: dict[str, Any]) -> State:
    """min of ``min_val``, max of ``max_val`` over the observed states (elementwise)."""
    seen = _observed(states)
    if not seen:
        return dict(states[0])
    _check_same_shape(seen, "min_val")
    return {
        "min_val": functools.reduce(torch.minimum, [s["min_val"] for s in seen]),
        "max_val": functools.reduce(torch.maximum, [s["max_val"] for s in seen]),
    }


def merge_moving_average(states: Sequence[State], config: dict[str, Any]) -> State:
    """Elementwise mean of the observed states' moving-average ``min_val`` / ``max_val``."""
    seen = _observed(states)
    if not seen:
        return dict(states[0])
    _check_same_shape(seen, "min_val")
    return {
        "min_val": torch.stack([s["min_val"] for s in seen]).mean(dim=0),
        "max_val": torch.stack([s["max_val"] for s in seen]).mean(dim=0),
    }


def merge_histograms(states: Sequence[State], config: dict[str, Any]) -> State:
    """Union range; histograms not already on it re-binned onto it; counts summed."""
    from pt2q.observer.histogram import rebin_histogram

    seen = _observed(states)
    if not seen:
        return dict(states[0])
    _check_same_shape(seen, "histogram")
    lo_t = functools.reduce(torch.minimum, [s["min_val"] for s in seen])
    hi_t = functools.reduce(torch.maximum, [s["max_val"] for s in seen])
    lo, hi = float(lo_t), float(hi_t)
    total = torch.zeros_like(seen[0]["histogram"])
    for s in seen:
        old_lo, old_hi = float(s["min_val"]), float(s["max_val"])
        if old_lo == lo and old_hi == hi:
            total = total + s["histogram"]
        else:
            rate = int(config["upsample_rate"])
            total = total + rebin_histogram(s["histogram"], old_lo, old_hi, lo, hi, rate)
    return {"histogram": total, "min_val": lo_t.clone(), "max_val": hi_t.clone()}


def merge_identical(states: Sequence[State], config: dict[str, Any]) -> State:
    """Settings, not statistics: every state must hold the same values."""
    first = states[0]
    for i, s in enumerate(states[1:], start=1):
        for name, value in first.items():
            if value.shape != s[name].shape or not torch.equal(value, s[name]):
                raise ObserverMergeError(
                    f"'{name}' differs between state 0 ({value.tolist()}) and state {i} "
                    f"({s[name].tolist()}); it is a setting every copy must share"
                )
    return dict(first)


def merge_fake_quant_switches(states: Sequence[State], config: dict[str, Any]) -> State:
    """Switches must agree; scale / zero point are taken from the first state (refreshed from
    the merged observer on load when the observer is enabled)."""
    switches = [{k: s[k] for k in ("fake_quant_enabled", "observer_enabled")} for s in states]
    merge_identical(switches, config)
    return dict(states[0])


def refresh_fake_quant(module: nn.Module) -> None:
    """Recompute a FakeQuantize's scale / zero point from its (merged) observer."""
    from pt2q.fake_quantize.fake_quantize import FakeQuantize

    if isinstance(module, FakeQuantize) and module.is_observer_enabled and module.has_observed:
        module._update_qparams()


_REGISTERED: dict[str, MergeRule] = {}


def class_key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_merge_rule(cls: type, rule: MergeRule) -> type:
    """Use ``rule`` for ``cls`` and its subclasses without a rule of their own; returns ``cls``."""
    if not isinstance(rule, MergeRule):
        raise TypeError(f"register_merge_rule: rule must be a MergeRule, got {type(rule).__name__}")
    _REGISTERED[class_key(cls)] = rule
    return cls


@functools.cache
def _builtin_rules() -> dict[str, MergeRule]:
    # Imported here: pt2q.fake_quantize imports pt2q.observer.
    from pt2q.fake_quantize.base import FakeQuantizeBase
    from pt2q.fake_quantize.fake_quantize import FakeQuantize
    from pt2q.observer.affine import (
        AffineQuantizedMinMaxObserver,
        AffineQuantizedMovingAverageMinMaxObserver,
        AffineQuantizedPlaceholderObserver,
    )
    from pt2q.observer.fixed import FixedQParamsObserver
    from pt2q.observer.histogram import HistogramObserver
    from pt2q.observer.minmax import MinMaxObserver, PerChannelMinMaxObserver
    from pt2q.observer.moving_average import (
        MovingAverageMinMaxObserver,
        MovingAveragePerChannelMinMaxObserver,
    )

    min_max = ("min_val", "max_val")
    switches = ("fake_quant_enabled", "observer_enabled", "scale", "zero_point")
    table: dict[type, MergeRule] = {
        ObserverBase: MergeRule((), merge_identical),
        MinMaxObserver: MergeRule(min_max, merge_min_max),
        PerChannelMinMaxObserver: MergeRule(min_max, merge_min_max),
        MovingAverageMinMaxObserver: MergeRule(min_max, merge_moving_average),
        MovingAveragePerChannelMinMaxObserver: MergeRule(min_max, merge_moving_average),
        HistogramObserver: MergeRule(
            ("histogram", *min_max), merge_histograms, config=("upsample_rate",)
        ),
        FixedQParamsObserver: MergeRule(("scale", "zero_point"), merge_identical),
        FakeQuantizeBase: MergeRule(switches, merge_identical),
        FakeQuantize: MergeRule(switches, merge_fake_quant_switches, refresh=refresh_fake_quant),
        # affine observers: per-block min / max (empty until observed)
        AffineQuantizedMinMaxObserver: MergeRule(min_max, merge_min_max),
        AffineQuantizedMovingAverageMinMaxObserver: MergeRule(min_max, merge_moving_average),
        AffineQuantizedPlaceholderObserver: MergeRule(min_max, merge_min_max),
    }
    return {class_key(cls): rule for cls, rule in table.items()}


def rule_by_key(key: str) -> MergeRule:
    """The rule registered under ``key`` (as saved in a state dict's metadata)."""
    rule = _REGISTERED.get(key) or _builtin_rules().get(key)
    if rule is None:
        raise ObserverMergeError(
            f"no merge rule is registered for '{key}' (saved in the state dict's metadata); "
            "import the module that registers it (pt2q.observer.merge_rules.register_merge_rule)"
        )
    return rule


def own_buffer_names(module: nn.Module) -> list[str]:
    """The module's own persistent buffers (not its submodules'), in registration order."""
    skip = module._non_persistent_buffers_set
    return [n for n, b in module._buffers.items() if b is not None and n not in skip]


def rule_for(module: nn.Module, name: str) -> tuple[str, MergeRule]:
    """(rule key, rule) for an observer module: the nearest class on its MRO with a rule.

    Raises ObserverMergeError when the rule does not cover exactly the module's own buffers
    (a class with new state must register its own rule).
    """
    for cls in type(module).__mro__:
        key = class_key(cls)
        rule = _REGISTERED.get(key) or _builtin_rules().get(key)
        if rule is None:
            continue
        buffers = own_buffer_names(module)
        if sorted(buffers) != sorted(rule.buffers):
            raise ObserverMergeError(
                f"observer '{name}' ({type(module).__name__}) has buffers {buffers}, but the "
                f"nearest merge rule (for {cls.__name__}) merges {list(rule.buffers)}; register "
                f"a rule for {type(module).__name__} with "
                "pt2q.observer.merge_rules.register_merge_rule"
            )
        return key, rule
    raise ObserverMergeError(
        f"'{name}' ({type(module).__name__}) is not a pt2q observer; no merge rule applies"
    )
