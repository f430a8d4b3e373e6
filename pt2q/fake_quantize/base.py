"""FakeQuantizeBase: the on/off switches every fake-quantizer has, and the ``model.apply`` helpers.

A fake-quantizer is an observer (same contract as ``pt2q.observer.base``: keyword construction,
``with_args``, ``calculate_qparams``, ``has_observed``, ``node_name`` in errors) whose forward
returns the fake-quantized tensor (quantize then dequantize, in float) instead of its input.
``observer_enabled`` / ``fake_quant_enabled`` are uint8 buffers (not bools) so that they travel
with ``state_dict`` and DDP broadcast, as in torchao.
"""

from __future__ import annotations

import torch
from torch import nn

from pt2q.observer.base import ObserverBase

__all__ = [
    "FakeQuantizeBase",
    "disable_fake_quant",
    "disable_observer",
    "enable_fake_quant",
    "enable_observer",
]


class FakeQuantizeBase(ObserverBase):
    """Base of pt2q fake-quantizers: observer + fake-quant switches, both on at construction."""

    fake_quant_enabled: torch.Tensor
    observer_enabled: torch.Tensor

    def __init__(self, dtype: torch.dtype = torch.uint8, is_dynamic: bool = False) -> None:
        super().__init__(dtype=dtype, is_dynamic=is_dynamic)
        self.register_buffer("fake_quant_enabled", torch.tensor([1], dtype=torch.uint8))
        self.register_buffer("observer_enabled", torch.tensor([1], dtype=torch.uint8))

    def enable_fake_quant(self, enabled: bool = True) -> None:
        """Turn fake quantization on (or off with ``enabled=False``); statistics are unaffected."""
        self.fake_quant_enabled[0] = 1 if enabled else 0

    def disable_fake_quant(self) -> None:
        self.enable_fake_quant(False)

    def enable_observer(self, enabled: bool = True) -> None:
        """Turn statistics collection (and the qparam update) on, or off with ``enabled=False``."""
        self.observer_enabled[0] = 1 if enabled else 0

    def disable_observer(self) -> None:
        self.enable_observer(False)

    @property
    def is_observer_enabled(self) -> bool:
        return bool(self.observer_enabled[0] == 1)

    @property
    def is_fake_quant_enabled(self) -> bool:
        return bool(self.fake_quant_enabled[0] == 1)


def _apply(module: nn.Module, method: str) -> None:
    if isinstance(module, FakeQuantizeBase):
        getattr(module, method)()


def disable_fake_quant(module: nn.Module) -> None:
    """``model.apply(disable_fake_quant)``: fake-quantizers pass data through unquantized."""
    _apply(module, "disable_fake_quant")


def enable_fake_quant(module: nn.Module) -> None:
    """``model.apply(enable_fake_quant)``."""
    _apply(module, "enable_fake_quant")


def disable_observer(module: nn.Module) -> None:
    """``model.apply(disable_observer)``: freeze the qparams (typical late in QAT)."""
    _apply(module, "disable_observer")


def enable_observer(module: nn.Module) -> None:
    """``model.apply(enable_observer)``."""
    _apply(module, "enable_observer")
