"""FixedQParamsFakeQuantize: fake quantization with a scale and zero point known ahead.

For ops whose output range is fixed (sigmoid: scale 1/256, zero point 0 on uint8). Nothing is
observed; ``calculate_qparams`` returns the fixed values, before or after any data.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from pt2q.fake_quantize.base import FakeQuantizeBase
from pt2q.observer.qparams import default_quant_range

__all__ = ["FixedQParamsFakeQuantize"]

_PER_TENSOR = (torch.per_tensor_affine, torch.per_tensor_symmetric)


class FixedQParamsFakeQuantize(FakeQuantizeBase):
    """Per-tensor fake quantization with fixed ``scale`` / ``zero_point``.

    Built from the fields of a ``FixedQParamsQuantizationSpec`` (``scale``, ``zero_point``,
    ``dtype``, ``quant_min``, ``quant_max``, ``qscheme``), or torchao-style from
    ``observer=`` a fixed-qparams observer constructor whose instance has those attributes.
    """

    scale: torch.Tensor
    zero_point: torch.Tensor

    def __init__(
        self,
        scale: float | None = None,
        zero_point: int | None = None,
        dtype: torch.dtype = torch.uint8,
        quant_min: int | None = None,
        quant_max: int | None = None,
        qscheme: torch.qscheme | None = None,
        is_dynamic: bool = False,
        observer: Any = None,
        **kwargs: Any,
    ) -> None:
        name = type(self).__name__
        kwargs.pop("ch_axis", None)  # a per-tensor spec may carry ch_axis=None
        if kwargs:
            raise TypeError(f"{name} got unexpected arguments {sorted(kwargs)}")
        if observer is not None:  # torchao: FixedQParamsFakeQuantize(observer=Obs.with_args(...))
            obs = observer()
            scale, zero_point = float(obs.scale), int(obs.zero_point)
            dtype, qscheme = obs.dtype, obs.qscheme
            quant_min, quant_max = obs.quant_min, obs.quant_max
        if scale is None or zero_point is None:
            raise TypeError(f"{name} needs scale and zero_point (or observer=), got neither")
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"{name}: scale must be a finite float > 0, got {scale!r}")
        if is_dynamic:
            raise ValueError(f"{name}: is_dynamic=True makes no sense with fixed qparams")
        super().__init__(dtype=dtype, is_dynamic=False)
        self.qscheme = torch.per_tensor_affine if qscheme is None else qscheme
        if self.qscheme not in _PER_TENSOR:
            raise ValueError(f"{name}: qscheme must be per-tensor, got {self.qscheme}")
        self.quant_min, self.quant_max = default_quant_range(dtype, quant_min, quant_max)
        if not self.quant_min <= zero_point <= self.quant_max:
            raise ValueError(
                f"{name}: zero_point={zero_point} is outside [{self.quant_min}, {self.quant_max}]"
            )
        self.ch_axis = -1
        self.register_buffer("scale", torch.tensor([float(scale)]))
        self.register_buffer("zero_point", torch.tensor([int(zero_point)], dtype=torch.int32))

    def calculate_qparams(self, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed (scale, zero_point), shape (1,)."""
        return self.scale, self.zero_point

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_observer_enabled and x.numel() > 0:
            # nothing to record, but NaN/inf is still an error (aminmax propagates NaN: cheap)
            lo, hi = torch.aminmax(x.detach())
            self._check_finite_stats(x, lo, hi)
        if self.is_fake_quant_enabled:
            x = torch.fake_quantize_per_tensor_affine(
                x, self.scale, self.zero_point, self.quant_min, self.quant_max
            )
        return x

    def extra_repr(self) -> str:
        return (
            f"fake_quant_enabled={self.is_fake_quant_enabled}, scale={self.scale.item()}, "
            f"zero_point={self.zero_point.item()}, dtype={self.dtype}, "
            f"quant_min={self.quant_min}, quant_max={self.quant_max}, qscheme={self.qscheme}"
        )
