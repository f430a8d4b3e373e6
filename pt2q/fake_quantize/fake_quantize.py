"""FakeQuantize: an observer plus ``torch.fake_quantize_per_{tensor,channel}_affine``.

Forward, in training (QAT)::

    if observer_enabled:   observer(x); scale, zero_point <- observer.calculate_qparams()
    if fake_quant_enabled: x <- (clamp(round(x / scale) + zero_point, qmin, qmax) - zero_point) * scale

The qparams come from the observer's formulas (``pt2q.observer.qparams``), the same ones convert
uses, so the model trains against exactly the q/dq it is converted to.
"""

from __future__ import annotations

from typing import Any

import torch

from pt2q.fake_quantize.base import FakeQuantizeBase
from pt2q.observer.base import ObserverBase
from pt2q.observer.moving_average import MovingAverageMinMaxObserver
from pt2q.observer.partial import PartialWrapper

__all__ = ["FakeQuantize"]

_PER_CHANNEL = (
    torch.per_channel_affine,
    torch.per_channel_symmetric,
    torch.per_channel_affine_float_qparams,
)
_PER_TENSOR = (torch.per_tensor_affine, torch.per_tensor_symmetric)


def _bound_dtype(observer: Any, observer_kwargs: dict[str, Any]) -> torch.dtype:
    """The dtype the observer will get: a keyword here, else one bound by ``with_args``."""
    if "dtype" in observer_kwargs:
        return observer_kwargs["dtype"]
    if isinstance(observer, PartialWrapper) and "dtype" in observer.keywords:
        return observer.keywords["dtype"]
    return torch.uint8


class FakeQuantize(FakeQuantizeBase):
    """Simulated quantization with qparams from an observer (per tensor or per channel).

    ``FakeQuantize(observer=MovingAverageMinMaxObserver, quant_min=None, quant_max=None,
    is_dynamic=False, **observer_kwargs)``: ``observer`` is a class or ``Cls.with_args(...)``,
    built with ``observer_kwargs`` (and the range when both ends are given). ``scale`` /
    ``zero_point`` buffers hold the qparams last computed (1.0 / 0 before any data);
    ``zero_point`` is int32 (float for ``per_channel_affine_float_qparams``), as the torch
    fake-quantize ops need.
    """

    scale: torch.Tensor
    zero_point: torch.Tensor
    keeps_health_sample = False  # its activation_post_process keeps the health sample

    def __init__(
        self,
        observer: Any = MovingAverageMinMaxObserver,
        quant_min: int | None = None,
        quant_max: int | None = None,
        is_dynamic: bool = False,
        **observer_kwargs: Any,
    ) -> None:
        name = type(self).__name__
        if quant_min is not None and quant_max is not None:
            if quant_min > quant_max:
                raise ValueError(
                    f"{name}: quant_min ({quant_min}) must be <= quant_max ({quant_max})"
                )
            dtype = _bound_dtype(observer, observer_kwargs)
            info = torch.iinfo(dtype)
            if not info.min <= quant_min <= quant_max <= info.max:
                raise ValueError(
                    f"{name}: [quant_min, quant_max] = [{quant_min}, {quant_max}] is outside the "
                    f"range of dtype {dtype} [{info.min}, {info.max}]"
                )
            observer_kwargs.update(quant_min=quant_min, quant_max=quant_max)
        observer_kwargs["is_dynamic"] = is_dynamic
        obs = observer(**observer_kwargs)
        if not isinstance(obs, ObserverBase):
            raise TypeError(
                f"{name}: observer must build a pt2q observer (pt2q.observer.ObserverBase), "
                f"got {type(obs).__name__}"
            )
        super().__init__(dtype=obs.dtype, is_dynamic=obs.is_dynamic)
        self.activation_post_process = obs
        self.activation_post_process.node_name = self.node_name
        self.quant_min: int = obs.quant_min  # type: ignore[assignment]
        self.quant_max: int = obs.quant_max  # type: ignore[assignment]
        self.qscheme: torch.qscheme = obs.qscheme  # type: ignore[assignment]
        if self.qscheme not in _PER_TENSOR + _PER_CHANNEL:
            raise ValueError(
                f"{name}: qscheme must be per-tensor or per-channel, got {self.qscheme}"
            )
        self.is_per_channel = self.qscheme in _PER_CHANNEL
        ch_axis = getattr(obs, "ch_axis", None)
        self.ch_axis: int = -1 if ch_axis is None else int(ch_axis)
        float_zp = self.qscheme == torch.per_channel_affine_float_qparams
        self.register_buffer("scale", torch.tensor([1.0]))
        self.register_buffer(
            "zero_point", torch.tensor([0], dtype=torch.float32 if float_zp else torch.int32)
        )

    # node_name is forwarded to the observer so that its errors name the graph node.
    @property
    def node_name(self) -> str:
        return self._node_name

    @node_name.setter
    def node_name(self, value: str) -> None:
        self._node_name = value
        if "activation_post_process" in self._modules:
            self.activation_post_process.node_name = value

    @property
    def has_observed(self) -> bool:
        return bool(self.activation_post_process.has_observed)

    def calculate_qparams(self, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The observer's qparams (raises ``ObserverNotCalibratedError`` before any data)."""
        return self.activation_post_process.calculate_qparams()

    def _update_qparams(self) -> None:
        scale, zero_point = self.calculate_qparams()
        scale = scale.reshape(-1).to(self.scale.device, torch.float32)
        zero_point = zero_point.reshape(-1).to(self.zero_point.device, self.zero_point.dtype)
        if self.scale.shape != scale.shape:
            self.scale.resize_(scale.shape)
            self.zero_point.resize_(zero_point.shape)
        self.scale.copy_(scale)
        self.zero_point.copy_(zero_point)

    def _fake_quantize(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_per_channel:
            return torch.fake_quantize_per_channel_affine(
                x, self.scale, self.zero_point, self.ch_axis, self.quant_min, self.quant_max
            )
        return torch.fake_quantize_per_tensor_affine(
            x, self.scale, self.zero_point, self.quant_min, self.quant_max
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_observer_enabled:
            self.activation_post_process(x.detach())
            if self.activation_post_process.has_observed:
                self._update_qparams()
        if self.is_fake_quant_enabled:
            x = self._fake_quantize(x)
        return x

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # Per-channel scale/zero_point change shape on first observation; resize before loading.
        for name in ("scale", "zero_point"):
            if prefix + name in state_dict:
                getattr(self, name).resize_(state_dict[prefix + name].shape)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def extra_repr(self) -> str:
        return (
            f"fake_quant_enabled={self.is_fake_quant_enabled}, "
            f"observer_enabled={self.is_observer_enabled}, quant_min={self.quant_min}, "
            f"quant_max={self.quant_max}, dtype={self.dtype}, qscheme={self.qscheme}, "
            f"ch_axis={self.ch_axis}, scale={self.scale}, zero_point={self.zero_point}"
        )
