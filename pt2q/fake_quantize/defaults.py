"""torchao's ready-made fake-quantizer constructors, with pt2q classes and plain int dtypes.

Same names and settings as ``torchao.quantization.pt2e.fake_quantize`` (``torch.quint8`` /
``torch.qint8`` become ``torch.uint8`` / ``torch.int8``). Each is a ``with_args`` constructor:
call it for a module or chain ``.with_args(...)`` to change a setting.
"""

from __future__ import annotations

import torch

from pt2q.fake_quantize.fake_quantize import FakeQuantize
from pt2q.fake_quantize.fixed_qparams import FixedQParamsFakeQuantize
from pt2q.fake_quantize.fused import FusedMovingAvgObsFakeQuantize
from pt2q.observer.histogram import HistogramObserver
from pt2q.observer.moving_average import (
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
)
from pt2q.observer.partial import PartialWrapper

__all__ = [
    "default_fake_quant",
    "default_weight_fake_quant",
    "default_dynamic_fake_quant",
    "default_per_channel_weight_fake_quant",
    "default_embedding_fake_quant",
    "default_embedding_fake_quant_4bit",
    "default_histogram_fake_quant",
    "default_fused_act_fake_quant",
    "default_fused_wt_fake_quant",
    "default_fused_per_channel_wt_fake_quant",
    "fused_wt_fake_quant_range_neg_127_to_127",
    "fused_per_channel_wt_fake_quant_range_neg_127_to_127",
    "default_fixed_qparams_range_neg1to1_fake_quant",
    "default_fixed_qparams_range_0to1_fake_quant",
    "default_symmetric_fixed_qparams_fake_quant",
    "default_affine_fixed_qparams_fake_quant",
]

# activations: uint8 affine, range halved (reduce_range) as torchao's default
default_fake_quant: PartialWrapper = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver,
    dtype=torch.uint8,
    qscheme=torch.per_tensor_affine,
    reduce_range=True,
)
# weights: int8 symmetric per tensor
default_weight_fake_quant: PartialWrapper = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver,
    quant_min=-128,
    quant_max=127,
    dtype=torch.int8,
    qscheme=torch.per_tensor_symmetric,
)
# dynamic activations: memoryless observer (averaging_constant=1)
default_dynamic_fake_quant: PartialWrapper = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver,
    quant_min=0,
    quant_max=255,
    is_dynamic=True,
    dtype=torch.uint8,
    averaging_constant=1,
)
default_per_channel_weight_fake_quant: PartialWrapper = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver,
    quant_min=-128,
    quant_max=127,
    dtype=torch.int8,
    qscheme=torch.per_channel_symmetric,
    ch_axis=0,
)
default_embedding_fake_quant: PartialWrapper = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver,
    qscheme=torch.per_channel_affine_float_qparams,
    dtype=torch.uint8,
    quant_min=0,
    quant_max=255,
    ch_axis=0,
    averaging_constant=1,
)
# torchao's uses torch.quint4x2; the quantized_decomposed IR stores 4-bit values in uint8 [0, 15]
default_embedding_fake_quant_4bit: PartialWrapper = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver,
    qscheme=torch.per_channel_affine_float_qparams,
    dtype=torch.uint8,
    quant_min=0,
    quant_max=15,
    ch_axis=0,
    averaging_constant=1,
)
default_histogram_fake_quant: PartialWrapper = FakeQuantize.with_args(
    observer=HistogramObserver,
    dtype=torch.uint8,
    qscheme=torch.per_tensor_affine,
    reduce_range=True,
)
default_fused_act_fake_quant: PartialWrapper = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=torch.uint8
)
default_fused_wt_fake_quant: PartialWrapper = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver,
    quant_min=-128,
    quant_max=127,
    dtype=torch.int8,
    qscheme=torch.per_tensor_symmetric,
)
default_fused_per_channel_wt_fake_quant: PartialWrapper = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver,
    quant_min=-128,
    quant_max=127,
    dtype=torch.int8,
    qscheme=torch.per_channel_symmetric,
)
fused_wt_fake_quant_range_neg_127_to_127: PartialWrapper = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver,
    quant_min=-127,
    quant_max=127,
    dtype=torch.int8,
    qscheme=torch.per_tensor_symmetric,
    eps=2**-12,
)
fused_per_channel_wt_fake_quant_range_neg_127_to_127: PartialWrapper = (
    FusedMovingAvgObsFakeQuantize.with_args(
        observer=MovingAveragePerChannelMinMaxObserver,
        quant_min=-127,
        quant_max=127,
        dtype=torch.int8,
        qscheme=torch.per_channel_symmetric,
        eps=2**-12,
    )
)
# tanh-like outputs in [-1, 1) and sigmoid-like outputs in [0, 1), uint8
default_fixed_qparams_range_neg1to1_fake_quant: PartialWrapper = FixedQParamsFakeQuantize.with_args(
    scale=2.0 / 256.0, zero_point=128, dtype=torch.uint8
)
default_fixed_qparams_range_0to1_fake_quant: PartialWrapper = FixedQParamsFakeQuantize.with_args(
    scale=1.0 / 256.0, zero_point=0, dtype=torch.uint8
)
# the older names of the two above
default_symmetric_fixed_qparams_fake_quant = default_fixed_qparams_range_neg1to1_fake_quant
default_affine_fixed_qparams_fake_quant = default_fixed_qparams_range_0to1_fake_quant
