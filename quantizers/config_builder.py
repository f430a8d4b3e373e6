"""The one builder of ``QuantizationConfig``s for the pattern quantizers (x86, XNNPACK).

A config is a per-tensor affine activation spec (used for inputs and, when the backend observes
outputs, outputs), a symmetric weight spec and a float bias. What differs per backend are the
dtypes and ranges, whether weights are per channel, and whether a dynamic config keeps an output
spec; the observers follow from the mode:

| mode          | activation                                   | weight                                    |
| ------------- | -------------------------------------------- | ----------------------------------------- |
| PTQ static    | HistogramObserver                            | (PerChannel)MinMaxObserver                |
| PTQ dynamic   | PlaceholderObserver (qparams at run time)    | (PerChannel)MinMaxObserver                |
| QAT static    | FusedMovingAvgObsFakeQuantize                | FusedMovingAvgObsFakeQuantize over        |
| QAT dynamic   | FakeQuantize over MovingAverageMinMaxObserver(averaging_constant=1) | MovingAverage(PerChannel)MinMaxObserver |

``eps`` is 2**-12 everywhere (torchao's value).
"""

from __future__ import annotations

from typing import Any

import torch

from pt2q.quantizer import QuantizationConfig, QuantizationSpec

__all__ = ["EPS", "activation_spec", "symmetric_weight_spec", "build_config"]

EPS = 2**-12


def activation_spec(
    dtype: torch.dtype, qmin: int, qmax: int, *, is_qat: bool, is_dynamic: bool
) -> QuantizationSpec:
    """A per-tensor affine activation spec in ``[qmin, qmax]`` with the mode's observer."""
    from pt2q import fake_quantize as fq
    from pt2q import observer as obs

    extra: dict[str, Any] = {"eps": EPS}
    ctr: Any
    if is_qat and is_dynamic:
        ctr = fq.FakeQuantize
        extra["observer"] = obs.MovingAverageMinMaxObserver.with_args(averaging_constant=1)
    elif is_qat:
        ctr = fq.FusedMovingAvgObsFakeQuantize
    else:
        ctr = obs.PlaceholderObserver if is_dynamic else obs.HistogramObserver
    return QuantizationSpec(
        dtype=dtype,
        quant_min=qmin,
        quant_max=qmax,
        qscheme=torch.per_tensor_affine,
        is_dynamic=is_dynamic,
        observer_or_fake_quant_ctr=ctr.with_args(**extra),
    )


def symmetric_weight_spec(
    dtype: torch.dtype, qmin: int, qmax: int, *, per_channel: bool, is_qat: bool
) -> QuantizationSpec:
    """A symmetric weight spec in ``[qmin, qmax]``, per channel on axis 0 (``(C_out, C_in, kH,
    kW)`` conv / ``(N, K)`` linear weights) or per tensor."""
    from pt2q import fake_quantize as fq
    from pt2q import observer as obs

    extra: dict[str, Any] = {"eps": EPS}
    ctr: Any
    if is_qat:
        ctr = fq.FusedMovingAvgObsFakeQuantize
        extra["observer"] = (
            obs.MovingAveragePerChannelMinMaxObserver
            if per_channel
            else obs.MovingAverageMinMaxObserver
        )
    else:
        ctr = obs.PerChannelMinMaxObserver if per_channel else obs.MinMaxObserver
    return QuantizationSpec(
        dtype=dtype,
        quant_min=qmin,
        quant_max=qmax,
        qscheme=torch.per_channel_symmetric if per_channel else torch.per_tensor_symmetric,
        ch_axis=0 if per_channel else None,
        observer_or_fake_quant_ctr=ctr.with_args(**extra),
    )


def build_config(
    act: QuantizationSpec, weight: QuantizationSpec, *, is_qat: bool, observe_output: bool = True
) -> QuantizationConfig:
    """``act`` for inputs (and outputs when ``observe_output``), ``weight``, float bias."""
    return QuantizationConfig(act, act if observe_output else None, weight, None, is_qat)
