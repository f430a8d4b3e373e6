"""Observer for ops whose output range is known ahead (sigmoid, softmax, tanh...)."""

from __future__ import annotations

from typing import Any

import torch

from pt2q.observer.base import ObserverBase
from pt2q.observer.qparams import default_quant_range

__all__ = ["FixedQParamsObserver"]


class FixedQParamsObserver(ObserverBase):
    """Returns the given ``(scale, zero_point)`` whatever it sees; never needs calibration."""

    scale: torch.Tensor  # buffers (registered in __init__)
    zero_point: torch.Tensor

    def __init__(
        self,
        scale: float,
        zero_point: int,
        dtype: torch.dtype = torch.uint8,
        qscheme: torch.qscheme | None = None,
        quant_min: int | None = None,
        quant_max: int | None = None,
        is_dynamic: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(dtype=dtype, is_dynamic=is_dynamic)
        self.qscheme = torch.per_tensor_affine if qscheme is None else qscheme
        self.quant_min, self.quant_max = default_quant_range(dtype, quant_min, quant_max)
        self.register_buffer("scale", torch.tensor([float(scale)]))
        self.register_buffer("zero_point", torch.tensor([int(zero_point)], dtype=torch.int32))
        self.ch_axis = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel():
            lo, hi = torch.aminmax(x.detach().float())
            self._check_finite_stats(x, lo, hi)
        return x

    def calculate_qparams(self, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.scale, self.zero_point

    def extra_repr(self) -> str:
        return f"scale={float(self.scale)}, zero_point={int(self.zero_point)}, dtype={self.dtype}"
