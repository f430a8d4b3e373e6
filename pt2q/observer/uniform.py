"""Shared base of observers that map statistics to an integer range with an affine/symmetric
scheme (everything except the placeholder)."""

from __future__ import annotations

from typing import Any

import torch

from pt2q.observer.base import ObserverBase, ObserverNotCalibratedError
from pt2q.observer.qparams import DEFAULT_EPS, calculate_qparams, default_quant_range

__all__ = ["UniformObserverBase"]


class UniformObserverBase(ObserverBase):
    """Holds dtype, qscheme, integer range and eps; subclasses keep ``min_val``/``max_val``
    buffers (0-d per tensor, 1-d per channel) and implement ``forward``.

    ``min_val`` starts at +inf and ``max_val`` at -inf, so ``has_observed`` is ``min <= max``.
    """

    default_qscheme: torch.qscheme = torch.per_tensor_affine

    def __init__(
        self,
        dtype: torch.dtype = torch.uint8,
        qscheme: torch.qscheme | None = None,
        reduce_range: bool = False,
        quant_min: int | None = None,
        quant_max: int | None = None,
        eps: float = DEFAULT_EPS,
        is_dynamic: bool = False,
        ch_axis: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dtype=dtype, is_dynamic=is_dynamic)
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected arguments {sorted(kwargs)}")
        self.qscheme = self.default_qscheme if qscheme is None else qscheme
        self.reduce_range = reduce_range
        self.quant_min, self.quant_max = default_quant_range(
            dtype, quant_min, quant_max, reduce_range
        )
        self.eps = float(eps)
        self.ch_axis = ch_axis

    @property
    def has_observed(self) -> bool:
        min_val: torch.Tensor = self.min_val  # type: ignore[assignment]
        max_val: torch.Tensor = self.max_val  # type: ignore[assignment]
        return min_val.numel() > 0 and bool((min_val <= max_val).all())

    def calculate_qparams(self, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, zero_point) from the recorded min/max; raises if nothing was observed."""
        if not self.has_observed:
            raise ObserverNotCalibratedError(
                f"{type(self).__name__} at node '{self.node_name}' has not observed any data: "
                "run calibration inputs through the prepared model before convert_pt2e"
            )
        return calculate_qparams(
            self.min_val,  # type: ignore[arg-type]
            self.max_val,  # type: ignore[arg-type]
            self.quant_min,
            self.quant_max,
            self.dtype,
            self.qscheme,
            self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"dtype={self.dtype}, qscheme={self.qscheme}, quant_min={self.quant_min}, "
            f"quant_max={self.quant_max}, min_val={self.min_val}, max_val={self.max_val}"
        )
