"""Specs and the Quantizer base class (mirrors ``torchao.quantization.pt2e.quantizer``)."""

from pt2q.quantizer.quantizer import Quantizer
from pt2q.quantizer.specs import (
    Q_ANNOTATION_KEY,
    DerivedQuantizationSpec,
    EdgeOrNode,
    FixedQParamsQuantizationSpec,
    ObserverOrFakeQuantize,
    ObserverOrFakeQuantizeConstructor,
    QuantizationAnnotation,
    QuantizationConfig,
    QuantizationSpec,
    QuantizationSpecBase,
    SharedQuantizationSpec,
    dtype_range,
)

__all__ = [
    "Q_ANNOTATION_KEY",
    "DerivedQuantizationSpec",
    "EdgeOrNode",
    "FixedQParamsQuantizationSpec",
    "ObserverOrFakeQuantize",
    "ObserverOrFakeQuantizeConstructor",
    "QuantizationAnnotation",
    "QuantizationConfig",
    "QuantizationSpec",
    "QuantizationSpecBase",
    "SharedQuantizationSpec",
    "Quantizer",
    "dtype_range",
]
