"""An observer that records nothing: for dynamic quantization (qparams chosen at run time) and
for dtypes that need no statistics (e.g. float16 casts)."""

from __future__ import annotations

from typing import Any

import torch

from pt2q.observer.base import ObserverBase
from pt2q.observer.qparams import DEFAULT_EPS, default_quant_range

__all__ = ["PlaceholderObserver"]


class PlaceholderObserver(ObserverBase):
    """Carries the quantization settings to convert; ``calculate_qparams`` is not available."""

    def __init__(
        self,
        dtype: torch.dtype = torch.float32,
        is_dynamic: bool = False,
        qscheme: torch.qscheme | None = None,
        quant_min: int | None = None,
        quant_max: int | None = None,
        eps: float = DEFAULT_EPS,
        ch_axis: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dtype=dtype, is_dynamic=is_dynamic)
        self.qscheme = torch.per_tensor_affine if qscheme is None else qscheme
        if dtype.is_floating_point:
            self.quant_min, self.quant_max = quant_min, quant_max
        else:
            self.quant_min, self.quant_max = default_quant_range(dtype, quant_min, quant_max)
        self.eps = float(eps)
        self.ch_axis = ch_axis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def calculate_qparams(self, **kwargs: Any) -> Any:
        raise RuntimeError(
            f"PlaceholderObserver at node '{self.node_name}' has no statistics: its qparams are "
            "chosen at run time (dynamic quantization) or not needed"
        )

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}, is_dynamic={self.is_dynamic}"
