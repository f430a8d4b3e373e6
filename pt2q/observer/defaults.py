"""torchao's ready-made observer constructors (``torchao.quantization.pt2e.observer``), with pt2q
classes and plain integer dtypes (``torch.quint8`` / ``torch.qint8`` become ``torch.uint8`` /
``torch.int8``, the dtypes of the ``quantized_decomposed`` ops). Each is a class or a
``with_args`` constructor: call it for an observer, or chain ``.with_args(...)``."""

from __future__ import annotations

import torch

from pt2q.observer.fixed import FixedQParamsObserver
from pt2q.observer.histogram import HistogramObserver
from pt2q.observer.minmax import MinMaxObserver, PerChannelMinMaxObserver
from pt2q.observer.partial import PartialWrapper
from pt2q.observer.passthrough import RecordingObserver, ReuseInputObserver
from pt2q.observer.placeholder import PlaceholderObserver

__all__ = [
    "default_affine_fixed_qparams_observer",
    "default_debug_observer",
    "default_dynamic_quant_observer",
    "default_fixed_qparams_range_0to1_observer",
    "default_fixed_qparams_range_neg1to1_observer",
    "default_histogram_observer",
    "default_observer",
    "default_per_channel_weight_observer",
    "default_placeholder_observer",
    "default_reuse_input_observer",
    "default_symmetric_fixed_qparams_observer",
    "default_weight_observer",
    "per_channel_weight_observer_range_neg_127_to_127",
    "weight_observer_range_neg_127_to_127",
]

# activations, range restricted to [0, 127] (as torchao's default)
default_observer: PartialWrapper = MinMaxObserver.with_args(quant_min=0, quant_max=127)
default_histogram_observer: PartialWrapper = HistogramObserver.with_args(quant_min=0, quant_max=127)
# float16 casts and other dtypes that need no statistics
default_placeholder_observer = PlaceholderObserver
# debugging: keeps every observed tensor
default_debug_observer = RecordingObserver
# reshape-like ops: same qparams as the input
default_reuse_input_observer = ReuseInputObserver
default_weight_observer: PartialWrapper = MinMaxObserver.with_args(
    dtype=torch.int8, qscheme=torch.per_tensor_symmetric
)
weight_observer_range_neg_127_to_127: PartialWrapper = MinMaxObserver.with_args(
    dtype=torch.int8,
    qscheme=torch.per_tensor_symmetric,
    quant_min=-127,
    quant_max=127,
    eps=2**-12,
)
default_per_channel_weight_observer: PartialWrapper = PerChannelMinMaxObserver.with_args(
    dtype=torch.int8, qscheme=torch.per_channel_symmetric
)
per_channel_weight_observer_range_neg_127_to_127: PartialWrapper = (
    PerChannelMinMaxObserver.with_args(
        dtype=torch.int8,
        qscheme=torch.per_channel_symmetric,
        quant_min=-127,
        quant_max=127,
        eps=2**-12,
    )
)
# dynamic activations: qparams chosen at run time over uint8 [0, 255]
default_dynamic_quant_observer: PartialWrapper = PlaceholderObserver.with_args(
    dtype=torch.uint8, quant_min=0, quant_max=255, is_dynamic=True
)
# tanh-like outputs in [-1, 1) and sigmoid-like outputs in [0, 1), uint8
default_fixed_qparams_range_neg1to1_observer: PartialWrapper = FixedQParamsObserver.with_args(
    scale=2.0 / 256.0, zero_point=128, dtype=torch.uint8, quant_min=0, quant_max=255
)
default_fixed_qparams_range_0to1_observer: PartialWrapper = FixedQParamsObserver.with_args(
    scale=1.0 / 256.0, zero_point=0, dtype=torch.uint8, quant_min=0, quant_max=255
)
# the older names of the two above
default_symmetric_fixed_qparams_observer = default_fixed_qparams_range_neg1to1_observer
default_affine_fixed_qparams_observer = default_fixed_qparams_range_0to1_observer
