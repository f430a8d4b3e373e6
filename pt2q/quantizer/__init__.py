"""Specs and the Quantizer base class (mirrors ``torchao.quantization.pt2e.quantizer``)."""

from typing import Any

from pt2q.quantizer.duplicate_dq_pass import DuplicateDQPass
from pt2q.quantizer.port_metadata_pass import PortNodeMetaForQDQ
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
from pt2q.quantizer.utils import (
    OperatorConfig,
    OperatorPatternType,
    annotate_input_qspec_map,
    annotate_output_qspec,
    get_bias_qspec,
    get_input_act_qspec,
    get_module_name_filter,
    get_output_act_qspec,
    get_weight_qspec,
    is_valid_annotation,
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
    "ComposableQuantizer",
    "DuplicateDQPass",
    "PortNodeMetaForQDQ",
    "OperatorConfig",
    "OperatorPatternType",
    "annotate_input_qspec_map",
    "annotate_output_qspec",
    "get_bias_qspec",
    "get_input_act_qspec",
    "get_module_name_filter",
    "get_output_act_qspec",
    "get_weight_qspec",
    "is_valid_annotation",
]


def __getattr__(name: str) -> Any:
    # ComposableQuantizer lives in pt2q.quantizers, which imports this package: load it lazily.
    if name == "ComposableQuantizer":
        from pt2q.quantizers.composable_quantizer import ComposableQuantizer

        return ComposableQuantizer
    raise AttributeError(f"module 'pt2q.quantizer' has no attribute {name!r}")
