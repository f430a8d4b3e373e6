"""Range setting per quantizer config: swap the activation observer of a QuantizationConfig."""

from __future__ import annotations

import dataclasses
from typing import Any

from pt2q.quantizer import QuantizationConfig, QuantizationSpec

__all__ = ["with_activation_observer"]


def _swap(spec: Any, observer: Any) -> Any:
    if not isinstance(spec, QuantizationSpec) or spec.is_dynamic:
        return spec
    return dataclasses.replace(spec, observer_or_fake_quant_ctr=observer)


def with_activation_observer(config: QuantizationConfig, observer: Any) -> QuantizationConfig:
    """``config`` with ``observer`` (e.g. ``MSEObserver`` or
    ``PercentileObserver.with_args(percentile=99.9)``) for its static input and output
    activations; weights, bias and dynamic specs are unchanged. Use it with any setter::

        quantizer.set_global(with_activation_observer(get_symmetric_quantization_config(), MSEObserver))
    """
    if not isinstance(config, QuantizationConfig):
        raise TypeError(f"with_activation_observer: expected a QuantizationConfig, got {config!r}")
    if config.is_qat:
        raise ValueError(
            "with_activation_observer: config is a QAT config (fake-quantizers); pass a PTQ "
            "config, or build the fake-quantizer with observer=... yourself"
        )
    return dataclasses.replace(
        config,
        input_activation=_swap(config.input_activation, observer),
        output_activation=_swap(config.output_activation, observer),
    )
