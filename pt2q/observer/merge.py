"""Map-reduce calibration: merge observer state dicts saved by separate jobs.

Each job prepares the same exported program with the same quantizer, calibrates on its shard,
and saves ``get_observer_state_dict(prepared)`` with ``torch.save``; any scheduler (Slurm, Ray,
Spark) collects the files, and::

    merged = merge_observer_state_dicts([torch.load(f) for f in files])
    load_observer_state_dict(fresh_prepared, merged)
    converted = convert_pt2e(fresh_prepared)

gives the qparams one process calibrating on all shards would give (min/max families exactly,
histograms within ``MERGED_HISTOGRAM_VS_SINGLE_PROCESS_STEPS``; the rule per observer class is
in ``pt2q.observer.merge_rules``). The result does not depend on which job saw which data, only
on the order of the list for float summation (histograms) and averaging.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from pt2q.observer.merge_rules import ObserverMergeError, rule_by_key

__all__ = ["merge_observer_state_dicts"]


def _observer_entries(sd: Mapping[str, torch.Tensor], index: int) -> dict[str, dict[str, Any]]:
    metadata: Mapping[str, Any] | None = getattr(sd, "_metadata", None)
    if metadata is None:
        raise ObserverMergeError(
            f"merge_observer_state_dicts: state dict {index} has no _metadata; pass the "
            "OrderedDict returned by get_observer_state_dict as is (torch.save/torch.load keep "
            "it, dict(...) or a comprehension drops it)"
        )
    return {k: v for k, v in metadata.items() if isinstance(v, dict) and "pt2q_observer" in v}


def _check_same_observers(entries: list[dict[str, dict[str, Any]]]) -> None:
    first = entries[0]
    for i, other in enumerate(entries[1:], start=1):
        if set(other) != set(first):
            only0 = sorted(set(first) - set(other))[:5]
            only_i = sorted(set(other) - set(first))[:5]
            raise ObserverMergeError(
                f"merge_observer_state_dicts: state dicts 0 and {i} come from differently "
                f"prepared models (observers only in 0: {only0}, only in {i}: {only_i}); prepare "
                "every job from the same exported program with the same quantizer"
            )
        for name, entry in first.items():
            for field in ("pt2q_observer", "pt2q_config"):
                if other[name][field] != entry[field]:
                    raise ObserverMergeError(
                        f"merge_observer_state_dicts: observer '{name}' has {field}="
                        f"{entry[field]!r} in state dict 0 but {other[name][field]!r} in {i}"
                    )


def merge_observer_state_dicts(
    state_dicts: Sequence[Mapping[str, torch.Tensor]],
) -> OrderedDict[str, torch.Tensor]:
    """One observer state dict holding the combined statistics of ``state_dicts``.

    Every input must come from :func:`get_observer_state_dict` on models prepared the same way.
    Raises ``ObserverMergeError`` (a ``ValueError``) naming the observer when they do not fit
    together or an observer class has no merge rule.
    """
    if isinstance(state_dicts, Mapping) or len(state_dicts) == 0:
        raise ObserverMergeError(
            "merge_observer_state_dicts: expected a non-empty list of state dicts from "
            f"get_observer_state_dict, got {type(state_dicts).__name__} of length "
            f"{len(state_dicts)}"
        )
    entries = [_observer_entries(sd, i) for i, sd in enumerate(state_dicts)]
    _check_same_observers(entries)
    merged: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, entry in entries[0].items():
        rule_key = entry["pt2q_rule"]
        if rule_key is None:
            raise ObserverMergeError(
                f"merge_observer_state_dicts: observer '{name}' ({entry['pt2q_observer']}) has "
                "no merge rule; register one with pt2q.observer.merge_rules.register_merge_rule"
            )
        rule = rule_by_key(rule_key)
        try:
            states = [{b: sd[f"{name}.{b}"] for b in rule.buffers} for sd in state_dicts]
        except KeyError as e:
            raise ObserverMergeError(
                f"merge_observer_state_dicts: observer '{name}' misses buffer {e} in one of the "
                "state dicts"
            ) from e
        try:
            result = rule.merge(states, dict(entry["pt2q_config"]))
        except ObserverMergeError as e:
            raise ObserverMergeError(
                f"merge_observer_state_dicts: observer '{name}' ({entry['pt2q_observer']}): {e}"
            ) from e
        for b in rule.buffers:
            merged[f"{name}.{b}"] = result[b]
    merged._metadata = copy.deepcopy(state_dicts[0]._metadata)  # type: ignore[attr-defined]
    return merged
