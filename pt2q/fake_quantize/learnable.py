"""LearnableFakeQuantize: fake quantization whose scale and zero point are trained by gradient
(LSQ, https://openreview.net/pdf?id=rkgO66VKDS; TQT, https://arxiv.org/abs/1903.08066).

Same constructor and switches as torchao's: ``LearnableFakeQuantize(observer, quant_min,
quant_max, use_grad_scaling=False, **observer_kwargs)``. The observer initialises ``scale`` /
``zero_point`` on the first batch (and keeps updating them while it is enabled);
``enable_range_learning()`` then turns the observer off and lets gradients update both
parameters through ``torch._fake_quantize_learnable_per_{tensor,channel}_affine``.
``use_grad_scaling`` scales their gradients by ``1 / sqrt(numel * quant_max)`` as in LSQ.

Unlike torchao (parameters created on the first forward), ``scale`` and ``zero_point`` are
parameters from construction (1-element; per-channel ones take their size on the first batch),
so an optimizer built right after ``prepare_qat_pt2e`` already holds them; call the model once
before building it when per channel.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pt2q.errors import InvalidArgumentError
from pt2q.fake_quantize.fake_quantize import FakeQuantize
from pt2q.observer.moving_average import MovingAverageMinMaxObserver

__all__ = ["LearnableFakeQuantize", "disable_range_learning", "enable_range_learning"]

_SYMMETRIC = (torch.per_tensor_symmetric, torch.per_channel_symmetric)


class LearnableFakeQuantize(FakeQuantize):
    """See the module docstring. ``learning_enabled`` is a uint8 buffer like the other switches."""

    learning_enabled: torch.Tensor
    eps: torch.Tensor

    def __init__(
        self,
        observer: Any = MovingAverageMinMaxObserver,
        quant_min: int | None = None,
        quant_max: int | None = None,
        use_grad_scaling: bool = False,
        **observer_kwargs: Any,
    ) -> None:
        super().__init__(observer, quant_min, quant_max, **observer_kwargs)
        if not self.quant_min < self.quant_max:
            raise InvalidArgumentError(
                f"LearnableFakeQuantize: quant_min ({self.quant_min}) must be strictly less than "
                f"quant_max ({self.quant_max})"
            )
        self.use_grad_scaling = use_grad_scaling
        del self._buffers["scale"], self._buffers["zero_point"]
        self.scale = nn.Parameter(torch.tensor([1.0]), requires_grad=False)
        self.zero_point = nn.Parameter(torch.tensor([0.0]), requires_grad=False)
        self.register_buffer("learning_enabled", torch.tensor([0], dtype=torch.uint8))
        self.register_buffer("eps", torch.tensor([torch.finfo(torch.float32).eps]))
        self._initialized = False

    def enable_range_learning(self) -> None:
        """Learn scale / zero point by gradient; the observer stops updating them."""
        self.learning_enabled[0] = 1
        self.disable_observer()
        self.scale.requires_grad_(True)
        self.zero_point.requires_grad_(True)

    def disable_range_learning(self) -> None:
        """Freeze scale / zero point (no gradient)."""
        self.learning_enabled[0] = 0
        self.scale.requires_grad_(False)
        self.zero_point.requires_grad_(False)

    def enable_observer(self, enabled: bool = True) -> None:
        """Observer on (and range learning off), or off with ``enabled=False``."""
        super().enable_observer(enabled)
        if enabled:
            self.disable_range_learning()

    @property
    def has_observed(self) -> bool:
        return self._initialized

    def calculate_qparams(self, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The learned (scale clamped to at least eps, zero point rounded and clamped)."""
        if not self._initialized:
            return super().calculate_qparams()  # raises ObserverNotCalibratedError
        self.scale.data.clamp_(min=float(self.eps))
        zero_point = self.zero_point.detach().round().clamp(self.quant_min, self.quant_max)
        return self.scale.detach().clone(), zero_point.long()

    def _take_observer_qparams(self) -> None:
        scale, zero_point = self.activation_post_process.calculate_qparams()
        self.scale.data = scale.detach().reshape(-1).float().clone()
        self.zero_point.data = zero_point.detach().reshape(-1).float().clone()
        self._initialized = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_observer_enabled or not self._initialized:
            self.activation_post_process(x.detach())
            self._take_observer_qparams()
        if not self.is_fake_quant_enabled:
            return x
        if self.qscheme in _SYMMETRIC:
            self.zero_point.data.zero_()
        grad_factor = 1.0 / (x.numel() * self.quant_max) ** 0.5 if self.use_grad_scaling else 1.0
        if self.is_per_channel:
            return torch._fake_quantize_learnable_per_channel_affine(
                x,
                self.scale,
                self.zero_point,
                self.ch_axis,
                self.quant_min,
                self.quant_max,
                grad_factor,
            )
        return torch._fake_quantize_learnable_per_tensor_affine(
            x, self.scale, self.zero_point, self.quant_min, self.quant_max, grad_factor
        )

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        for name in ("scale", "zero_point"):
            if prefix + name in state_dict:
                getattr(self, name).data = torch.empty_like(state_dict[prefix + name])
                self._initialized = True
        nn.Module._load_from_state_dict(self, state_dict, prefix, *args)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, learning_enabled={int(self.learning_enabled[0])}, "
            f"use_grad_scaling={self.use_grad_scaling}"
        )


def enable_range_learning(mod: nn.Module) -> None:
    """``model.apply(enable_range_learning)``: every LearnableFakeQuantize learns its range."""
    if isinstance(mod, LearnableFakeQuantize):
        mod.enable_range_learning()


def disable_range_learning(mod: nn.Module) -> None:
    """``model.apply(disable_range_learning)``: every LearnableFakeQuantize freezes its range."""
    if isinstance(mod, LearnableFakeQuantize):
        mod.disable_range_learning()
