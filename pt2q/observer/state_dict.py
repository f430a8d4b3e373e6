"""Calibration statistics in and out of a prepared model (torchao-named functions).

``get_observer_state_dict(prepared)`` returns the buffers of every observer / fake-quantizer
(keys ``activation_post_process_<i>.<buffer>``, as the model's own ``state_dict`` names them);
``load_observer_state_dict(fresh_prepared, sd)`` puts them into a model prepared the same way
(same exported program, same quantizer), so ``convert_pt2e`` gives the same qparams, in this or
another process (``torch.save`` / ``torch.load`` keep everything, metadata included).

Each observer's entry in the state dict's ``_metadata`` also records its class, the merge rule
that applies to it and the settings that rule needs (``pt2q_observer``, ``pt2q_rule``,
``pt2q_config``), so state dicts saved by separate jobs can be merged without the model
(``pt2q.observer.merge.merge_observer_state_dicts``).

Unlike torchao, loading checks keys and classes before writing anything (missing or unexpected
observer keys, an observer class other than the saved one) and does not ignore shape
mismatches; each raises ``ObserverStateDictError`` (a ``RuntimeError``, as ``nn.Module.load_state_dict`` raises).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from pt2q.observer.base import ObserverBase
from pt2q.observer.merge_rules import ObserverMergeError, class_key, own_buffer_names, rule_for

__all__ = [
    "ObserverStateDictError",
    "get_observer_state_dict",
    "load_observer_state_dict",
    "observer_modules",
]


class ObserverStateDictError(RuntimeError):
    """An observer state dict that does not fit the model it is loaded into."""


def observer_modules(mod: nn.Module) -> list[tuple[str, nn.Module]]:
    """(qualified name, module) of every observer and fake-quantizer in ``mod``, nested
    ones (a fake-quantizer's observer) included, in ``named_modules`` order."""
    return [(name, m) for name, m in mod.named_modules() if isinstance(m, ObserverBase) and name]


def _metadata_entry(name: str, module: nn.Module) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "version": getattr(module, "_version", 1),
        "pt2q_observer": class_key(type(module)),
        "pt2q_rule": None,
        "pt2q_config": {},
    }
    try:
        key, rule = rule_for(module, name)
    except ObserverMergeError:
        return entry  # saving and loading still work; merging says why it cannot
    entry["pt2q_rule"] = key
    entry["pt2q_config"] = {attr: getattr(module, attr) for attr in rule.config}
    return entry


def get_observer_state_dict(mod: nn.Module) -> OrderedDict[str, torch.Tensor]:
    """The statistics of every observer in ``mod`` (detached copies), keyed as in
    ``mod.state_dict()``; ``._metadata`` describes each observer (see the module docstring)."""
    if not isinstance(mod, nn.Module):
        raise TypeError(
            f"get_observer_state_dict: expected the prepared model (an nn.Module), "
            f"got {type(mod).__name__}"
        )
    od: OrderedDict[str, torch.Tensor] = OrderedDict()
    metadata: OrderedDict[str, dict[str, Any]] = OrderedDict()
    for name, module in observer_modules(mod):
        for buf in own_buffer_names(module):
            od[f"{name}.{buf}"] = module._buffers[buf].detach().clone()  # type: ignore[union-attr]
        metadata[name] = _metadata_entry(name, module)
    od._metadata = metadata  # type: ignore[attr-defined]
    return od


def _expected_keys(modules: list[tuple[str, nn.Module]]) -> set[str]:
    return {f"{name}.{buf}" for name, m in modules for buf in own_buffer_names(m)}


def _listed(keys: set[str], limit: int = 8) -> str:
    ordered = sorted(keys)
    more = f" and {len(ordered) - limit} more" if len(ordered) > limit else ""
    return ", ".join(ordered[:limit]) + more


def _check_fits(
    mod: nn.Module, modules: list[tuple[str, nn.Module]], obs_dict: Mapping[str, torch.Tensor]
) -> None:
    metadata: Mapping[str, Any] = getattr(obs_dict, "_metadata", None) or {}
    problems: list[str] = []
    expected = _expected_keys(modules)
    missing = expected - set(obs_dict)
    unexpected = {k for k in obs_dict if k not in expected}
    if missing:
        problems.append(f"missing keys {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_listed(unexpected)}")
    for name, module in modules:
        saved = metadata.get(name, {}).get("pt2q_observer")
        if saved is not None and saved != class_key(type(module)):
            problems.append(f"'{name}' is a {class_key(type(module))}, the state has a {saved}")
    if problems:
        raise ObserverStateDictError(
            f"load_observer_state_dict: the state does not fit this {type(mod).__name__} "
            f"({len(modules)} observers): " + "; ".join(problems) + ". Load it into a model "
            "prepared from the same exported program with the same quantizer as the one "
            "get_observer_state_dict was called on."
        )


def load_observer_state_dict(mod: nn.Module, obs_dict: Mapping[str, torch.Tensor]) -> None:
    """Load statistics saved by :func:`get_observer_state_dict` (or merged ones) into ``mod``.

    Checks keys and classes before writing, raises on shape mismatches; after loading, fake-quantizers with their observer
    enabled recompute scale / zero point from the loaded statistics.
    """
    if not isinstance(mod, nn.Module):
        raise TypeError(
            f"load_observer_state_dict: expected the prepared model (an nn.Module), "
            f"got {type(mod).__name__}"
        )
    modules = observer_modules(mod)
    _check_fits(mod, modules, obs_dict)
    metadata: Mapping[str, Any] = getattr(obs_dict, "_metadata", None) or {}
    state = dict(obs_dict)
    missing: list[str] = []
    unexpected: list[str] = []
    errors: list[str] = []
    for name, module in modules:
        local_meta = dict(metadata.get(name, {}))
        module._load_from_state_dict(
            state, f"{name}.", local_meta, True, missing, unexpected, errors
        )
    if errors:
        raise ObserverStateDictError(
            "load_observer_state_dict: " + " ".join(errors) + " The state was saved from a "
            "model prepared differently (other quantizer or observer settings)."
        )
    for name, module in modules:
        try:
            _key, rule = rule_for(module, name)
        except ObserverMergeError:
            continue
        if rule.refresh is not None:
            rule.refresh(module)
