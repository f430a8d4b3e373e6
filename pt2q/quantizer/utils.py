"""Helpers quantizer authors call (``torchao.quantization.pt2e.quantizer.utils``, name for name).

Writing annotations, reading the specs of a ``QuantizationConfig`` with the checks torchao makes,
a filter on the module a node comes from, and the ``OperatorConfig`` record that lists which op
patterns a config applies to. Errors are ``ValueError`` (torchao raises ``ValueError`` for a bad
weight spec and ``AssertionError`` elsewhere; pt2q raises ``ValueError`` everywhere, with the
spec found; ``InvalidArgumentError`` is also an ``AssertionError``, so code catching torchao's
assertion keeps working).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch.fx import Node

from pt2q.errors import InvalidArgumentError
from pt2q.quantizer.specs import (
    Q_ANNOTATION_KEY,
    QuantizationAnnotation,
    QuantizationConfig,
    QuantizationSpec,
    QuantizationSpecBase,
)

__all__ = [
    "OperatorConfig",
    "OperatorPatternType",
    "QuantizationConfig",
    "annotate_input_qspec_map",
    "annotate_output_qspec",
    "get_bias_qspec",
    "get_input_act_qspec",
    "get_module_name_filter",
    "get_output_act_qspec",
    "get_weight_qspec",
    "is_valid_annotation",
]

# A pattern: the ops of one fused group in order, e.g. [torch.nn.Conv2d, torch.nn.ReLU].
OperatorPatternType = typing.Annotated[list[Callable], None]

_PER_TENSOR = (torch.per_tensor_affine, torch.per_tensor_symmetric)
_WEIGHT_QSCHEMES = (torch.per_tensor_symmetric, torch.per_channel_symmetric, None)


class OperatorConfig(NamedTuple):
    """A config and the op patterns it quantizes (what a quantizer reports as supported)."""

    config: QuantizationConfig
    operators: list[OperatorPatternType]


def _activation_spec(config: QuantizationConfig | None, field: str) -> QuantizationSpec | None:
    if config is None:
        return None
    spec = getattr(config, field)
    if spec is None:
        return None
    if spec.qscheme not in _PER_TENSOR:
        raise InvalidArgumentError(
            f"QuantizationConfig.{field}: activations are quantized per tensor; expected qscheme "
            f"per_tensor_affine or per_tensor_symmetric, found {spec.qscheme}"
        )
    return spec


def get_input_act_qspec(quantization_config: QuantizationConfig | None) -> QuantizationSpec | None:
    """The config's input-activation spec (None without a config); must be per tensor."""
    return _activation_spec(quantization_config, "input_activation")


def get_output_act_qspec(
    quantization_config: QuantizationConfig | None,
) -> QuantizationSpec | None:
    """The config's output-activation spec (None without a config); must be per tensor."""
    return _activation_spec(quantization_config, "output_activation")


def get_weight_qspec(quantization_config: QuantizationConfig | None) -> QuantizationSpec | None:
    """The config's weight spec (None without one); symmetric (per tensor/channel) or unset."""
    if quantization_config is None or quantization_config.weight is None:
        return None
    spec = quantization_config.weight
    if spec.qscheme not in _WEIGHT_QSCHEMES:
        raise InvalidArgumentError(
            f"Unsupported quantization_spec {spec} for weight: expected qscheme "
            f"per_tensor_symmetric, per_channel_symmetric or None, found {spec.qscheme}"
        )
    return spec


def get_bias_qspec(quantization_config: QuantizationConfig | None) -> QuantizationSpecBase | None:
    """The config's bias spec (None without one). As in torchao, only a float bias spec is
    accepted here; an int32 bias derived from input and weight scales is a
    ``DerivedQuantizationSpec`` the quantizer builds itself."""
    if quantization_config is None or quantization_config.bias is None:
        return None
    spec = quantization_config.bias
    if getattr(spec, "dtype", None) != torch.float:
        raise InvalidArgumentError(
            "QuantizationConfig.bias: only a float bias spec is supported here (derive int32 "
            f"bias with DerivedQuantizationSpec); found dtype {getattr(spec, 'dtype', None)}"
        )
    return spec


def annotate_input_qspec_map(
    node: Node, input_node: Node, qspec: QuantizationSpecBase | None
) -> None:
    """Set the spec of the edge ``input_node -> node``, creating the annotation if needed."""
    annotation = node.meta.get(Q_ANNOTATION_KEY) or QuantizationAnnotation()
    if annotation.input_qspec_map is None:
        annotation.input_qspec_map = {}
    annotation.input_qspec_map[input_node] = qspec
    node.meta[Q_ANNOTATION_KEY] = annotation


def annotate_output_qspec(node: Node, qspec: QuantizationSpecBase | None) -> None:
    """Set the spec of ``node``'s output, creating the annotation if needed."""
    annotation = node.meta.get(Q_ANNOTATION_KEY) or QuantizationAnnotation()
    annotation.output_qspec = qspec
    node.meta[Q_ANNOTATION_KEY] = annotation


def _module_paths(node: Node) -> list[str]:
    prefix = "L['self']."  # dynamo-captured graphs; torch.export paths have no prefix
    paths = [path for path, _ in node.meta.get("nn_module_stack", {}).values()]
    return [p[len(prefix) :] if p.startswith(prefix) else p for p in paths]


def get_module_name_filter(module_name: str) -> Callable[[Node], bool]:
    """A filter true for nodes created inside the submodule named ``module_name`` (its exact
    fully qualified name, e.g. ``"blocks.0.attn"``; nested modules match their parents' names)."""

    def module_name_filter(n: Node) -> bool:
        return module_name in _module_paths(n)

    return module_name_filter


def is_valid_annotation(annotation: QuantizationAnnotation | None) -> bool:
    """True when ``annotation`` quantizes something (an input edge or the output)."""
    if annotation is None:
        return False
    return bool(annotation.input_qspec_map) or annotation.output_qspec is not None
