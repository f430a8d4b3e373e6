"""Running min/max observers: per tensor and per channel."""

from __future__ import annotations

from typing import Any

import torch

from pt2q.observer.uniform import UniformObserverBase

__all__ = ["MinMaxObserver", "PerChannelMinMaxObserver"]


class MinMaxObserver(UniformObserverBase):
    """Tracks the running minimum and maximum of every tensor seen (per tensor)."""

    min_val: torch.Tensor  # buffers (registered in __init__)
    max_val: torch.Tensor

    def __init__(self, **kwargs: Any) -> None:
        kwargs.pop("ch_axis", None)  # a per-tensor spec may carry ch_axis=None
        super().__init__(**kwargs)
        self.register_buffer("min_val", torch.tensor(float("inf")))
        self.register_buffer("max_val", torch.tensor(float("-inf")))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() == 0:
            return x
        lo, hi = torch.aminmax(x.detach().float())
        self._check_finite_stats(x, lo, hi)
        self._merge(lo, hi)
        return x

    def _merge(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        """Fold one batch's min/max into the running statistics (subclasses: moving average)."""
        self.min_val = torch.minimum(self.min_val, lo)
        self.max_val = torch.maximum(self.max_val, hi)


class PerChannelMinMaxObserver(UniformObserverBase):
    """Tracks min/max per slice along ``ch_axis`` (weights: output channels)."""

    default_qscheme = torch.per_channel_affine
    min_val: torch.Tensor  # buffers (registered in __init__)
    max_val: torch.Tensor

    def __init__(self, ch_axis: int | None = 0, **kwargs: Any) -> None:
        super().__init__(ch_axis=0 if ch_axis is None else ch_axis, **kwargs)
        self.register_buffer("min_val", torch.empty(0))
        self.register_buffer("max_val", torch.empty(0))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # Per-channel buffers change shape on first observation; resize before loading.
        for name in ("min_val", "max_val"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() == 0:
            return x
        assert self.ch_axis is not None
        axis = self.ch_axis if self.ch_axis >= 0 else self.ch_axis + x.dim()
        if not 0 <= axis < x.dim():
            raise ValueError(
                f"{type(self).__name__} at node '{self.node_name}': ch_axis={self.ch_axis} is out "
                f"of range for an input of shape {tuple(x.shape)}"
            )
        y = x.detach().float().movedim(axis, 0).flatten(1)  # (C, everything else)
        lo, hi = torch.aminmax(y, dim=1)  # (C,) each
        self._check_finite_stats(x, lo, hi)
        if self.min_val.numel() == 0:
            self.min_val, self.max_val = lo, hi
            return x
        if self.min_val.shape != lo.shape:
            raise ValueError(
                f"{type(self).__name__} at node '{self.node_name}': saw {lo.numel()} channels "
                f"along axis {axis}, expected {self.min_val.numel()} as before"
            )
        self._merge(lo, hi)
        return x

    def _merge(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        """Fold one batch's per-channel min/max into the running statistics."""
        self.min_val = torch.minimum(self.min_val, lo)
        self.max_val = torch.maximum(self.max_val, hi)
