"""FusedMovingAvgObsFakeQuantize: FakeQuantize over a moving-average min/max observer.

torchao runs ``torch.fused_moving_avg_obs_fake_quant`` here. pt2q does not: that kernel computes
its own qparams, which differ from the observer formulas convert uses (symmetric int8 on an
all-positive channel gets zero_point -128 and half the scale, eps is not applied) and it only
does per-channel on axis 0. pt2q keeps the torchao name, defaults and buffers but runs the same
observer + ``calculate_qparams`` + fake-quantize op as ``FakeQuantize``, so training sees exactly
the qparams the converted model uses.
"""

from __future__ import annotations

from typing import Any

import torch

from pt2q.fake_quantize.fake_quantize import FakeQuantize
from pt2q.observer.moving_average import (
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
)

__all__ = ["FusedMovingAvgObsFakeQuantize"]

_MOVING_AVERAGE = (MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver)


class FusedMovingAvgObsFakeQuantize(FakeQuantize):
    """``FakeQuantize`` restricted to moving-average observers; range defaults to [0, 255]."""

    def __init__(
        self,
        observer: Any = MovingAverageMinMaxObserver,
        quant_min: int | None = 0,
        quant_max: int | None = 255,
        **observer_kwargs: Any,
    ) -> None:
        super().__init__(observer, quant_min, quant_max, **observer_kwargs)
        if not isinstance(self.activation_post_process, _MOVING_AVERAGE):
            raise TypeError(
                f"{type(self).__name__}: observer must be MovingAverageMinMaxObserver or "
                "MovingAveragePerChannelMinMaxObserver, got "
                f"{type(self.activation_post_process).__name__}"
            )
        # torchao keeps these as int64 for its fused kernel; same here for state_dict parity.
        self.register_buffer("fake_quant_enabled", torch.tensor([1], dtype=torch.long))
        self.register_buffer("observer_enabled", torch.tensor([1], dtype=torch.long))
        self.is_symmetric_quant = self.qscheme in (
            torch.per_tensor_symmetric,
            torch.per_channel_symmetric,
        )
