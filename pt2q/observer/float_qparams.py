"""Per-row observers with float zero points, for embedding tables (torchao's defaults).

``default_float_qparams_observer``: uint8 [0, 255], one float scale and zero point per row.
``default_float_qparams_observer_4bit``: torchao uses ``torch.quint4x2``; the
``quantized_decomposed`` IR has no packed 4-bit dtype, so pt2q stores the values in uint8 with
the range [0, 15] (a lowering packs two per byte).
"""

from __future__ import annotations

import torch

from pt2q.observer.minmax import PerChannelMinMaxObserver
from pt2q.observer.partial import PartialWrapper

__all__ = ["default_float_qparams_observer", "default_float_qparams_observer_4bit"]

default_float_qparams_observer: PartialWrapper = PerChannelMinMaxObserver.with_args(
    dtype=torch.uint8, qscheme=torch.per_channel_affine_float_qparams, ch_axis=0
)
default_float_qparams_observer_4bit: PartialWrapper = PerChannelMinMaxObserver.with_args(
    dtype=torch.uint8,
    quant_min=0,
    quant_max=15,
    qscheme=torch.per_channel_affine_float_qparams,
    ch_axis=0,
)
