"""Placeholder for a derived spec: qparams computed from other observers (e.g. the bias of a
conv quantized with scale = input_scale * weight_scale)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from pt2q.errors import InvalidArgumentError
from pt2q.observer.base import ObserverBase
from pt2q.observer.qparams import default_quant_range

__all__ = ["DerivedObserverOrFakeQuantize", "DerivedQParamsObserver"]


class DerivedQParamsObserver(ObserverBase):
    """Records nothing; ``calculate_qparams`` calls ``derive_qparams_fn(obs_or_fqs)``.

    ``obs_or_fqs`` is a plain list (not registered submodules): the observers it reads are owned
    by the model already.
    """

    def __init__(
        self,
        obs_or_fqs: list[torch.nn.Module],
        derive_qparams_fn: Callable[[list[torch.nn.Module]], tuple[torch.Tensor, torch.Tensor]],
        dtype: torch.dtype = torch.int32,
        quant_min: int | None = None,
        quant_max: int | None = None,
        qscheme: torch.qscheme | None = None,
        ch_axis: int | None = None,
        is_dynamic: bool = False,
    ) -> None:
        super().__init__(dtype=dtype, is_dynamic=is_dynamic)
        self.obs_or_fqs = list(obs_or_fqs)
        self.derive_qparams_fn = derive_qparams_fn
        self.quant_min, self.quant_max = default_quant_range(dtype, quant_min, quant_max)
        self.qscheme = torch.per_tensor_affine if qscheme is None else qscheme
        self.ch_axis = ch_axis

    @property
    def has_observed(self) -> bool:
        return all(getattr(o, "has_observed", True) for o in self.obs_or_fqs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def calculate_qparams(self, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.derive_qparams_fn(self.obs_or_fqs)

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}, qscheme={self.qscheme}, derived_from={len(self.obs_or_fqs)}"


class DerivedObserverOrFakeQuantize(DerivedQParamsObserver):
    """torchao's name and argument order for a derived observer:
    ``DerivedObserverOrFakeQuantize(dtype, obs_or_fqs, derive_qparams_fn, quant_min=None,
    quant_max=None, qscheme=None, ch_axis=None)``; a per-channel qscheme needs ``ch_axis``."""

    def __init__(
        self,
        dtype: torch.dtype,
        obs_or_fqs: list[torch.nn.Module],
        derive_qparams_fn: Callable[[list[torch.nn.Module]], tuple[torch.Tensor, torch.Tensor]],
        quant_min: int | None = None,
        quant_max: int | None = None,
        qscheme: torch.qscheme | None = None,
        ch_axis: int | None = None,
    ) -> None:
        per_channel = qscheme in (
            torch.per_channel_affine,
            torch.per_channel_symmetric,
            torch.per_channel_affine_float_qparams,
        )
        if per_channel and ch_axis is None:
            raise InvalidArgumentError(
                f"DerivedObserverOrFakeQuantize: qscheme {qscheme} is per channel; pass ch_axis"
            )
        super().__init__(
            obs_or_fqs=obs_or_fqs,
            derive_qparams_fn=derive_qparams_fn,
            dtype=dtype,
            quant_min=quant_min,
            quant_max=quant_max,
            qscheme=qscheme,
            ch_axis=ch_axis,
        )
