"""Fake-quantizers for QAT, owned by pt2q (names and signatures of torchao's ``fake_quantize``)."""

from pt2q.fake_quantize.base import (
    FakeQuantizeBase,
    disable_fake_quant,
    disable_observer,
    enable_fake_quant,
    enable_observer,
)
from pt2q.fake_quantize.fake_quantize import FakeQuantize
from pt2q.fake_quantize.fixed_qparams import FixedQParamsFakeQuantize
from pt2q.fake_quantize.fused import FusedMovingAvgObsFakeQuantize

__all__ = [
    "FakeQuantize",
    "FakeQuantizeBase",
    "FixedQParamsFakeQuantize",
    "FusedMovingAvgObsFakeQuantize",
    "disable_fake_quant",
    "disable_observer",
    "enable_fake_quant",
    "enable_observer",
]
