"""Calibration across the ranks of a ``torch.distributed`` process group.

Each rank prepares the same exported program with the same quantizer and runs its shard of the
calibration data; then::

    sync_observers(prepared)           # collective: every rank of the group calls it
    converted = convert_pt2e(prepared) # the same program on every rank

``sync_observers`` gathers every rank's observer statistics (``get_observer_state_dict``, moved
to CPU, ``all_gather_object``: works with gloo on CPU and under ``torchrun``), merges them with
the per-class rules of ``pt2q.observer.merge_rules`` in rank order, and loads the result into
every rank's model. All ranks compute the same merge from the same gathered data, so their
qparams are identical; against one process calibrating on all the data, min/max observers
agree exactly and histograms within ``MERGED_HISTOGRAM_VS_SINGLE_PROCESS_STEPS``.

Without a process group (separate jobs): ``merge_observer_state_dicts``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from pt2q.observer.merge import merge_observer_state_dicts
from pt2q.observer.state_dict import get_observer_state_dict, load_observer_state_dict

__all__ = ["sync_observers", "merge_observer_state_dicts"]


def sync_observers(prepared: nn.Module, group: Any = None) -> None:
    """Merge every observer's statistics across the ranks of ``group`` (default: the world),
    in place. A collective: every rank of the group must call it, after its calibration."""
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "sync_observers: torch.distributed is not initialized; call "
            "torch.distributed.init_process_group(...) first (e.g. backend='gloo' on CPU, under "
            "torchrun), or merge saved state dicts with merge_observer_state_dicts"
        )
    local = get_observer_state_dict(prepared)
    device_of = {key: value.device for key, value in local.items()}
    for key, value in local.items():
        local[key] = value.cpu()
    gathered: list[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(gathered, local, group=group)
    merged = merge_observer_state_dicts(gathered)
    for key, value in merged.items():
        merged[key] = value.to(device_of.get(key, torch.device("cpu")))
    load_observer_state_dict(prepared, merged)
