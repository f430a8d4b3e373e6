"""Base of the pattern quantizers: a recipe (ordered annotation steps) + config rules.

A subclass (X86InductorQuantizer, XNNPACKQuantizer) only declares its recipe as data (families
from ``annotators/`` with op tables from ``op_tables``) and its public setter names. ``annotate``
runs the steps in order, fills default float reasons, and checks that something was quantized
(see ``coverage.check_something_annotated``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

from torch.fx import GraphModule, Node

from pt2q.quantizer import Q_ANNOTATION_KEY, QuantizationAnnotation, QuantizationConfig, Quantizer
from pt2q.quantizers.annotation import set_float_reason
from pt2q.quantizers.annotators.masks import keep_masks_float
from pt2q.quantizers.config_rules import ConfigRules
from pt2q.quantizers.coverage import (
    CoverageReport,
    check_something_annotated,
    coverage,
    fill_default_reasons,
)
from pt2q.quantizers.op_tables import OpOverload

__all__ = ["AnnotationStep", "GraphTransform", "PatternQuantizer"]

# One recipe step: annotate gm in place using the quantizer's rules.
AnnotationStep = Callable[[GraphModule, ConfigRules], None]
# One transform_for_annotation rewrite: gm (in place) -> gm.
GraphTransform = Callable[[GraphModule], GraphModule]
# The kinds of rule a setter writes; ConfigRules.resolve applies them by precedence
# (module name > module type > function/operator type > global).
RuleKind = Literal["module_name", "module_type", "function_type"]
_Q = TypeVar("_Q", bound="PatternQuantizer")


class PatternQuantizer(Quantizer):
    """Runs ``recipe()`` over the graph with ``self.rules``; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.rules = ConfigRules()

    def recipe(self) -> Sequence[AnnotationStep]:
        """The ordered annotation steps (fusions before single ops, propagation last)."""
        raise NotImplementedError(f"{type(self).__name__}.recipe() is not implemented")

    def transforms(self) -> Sequence[GraphTransform]:
        """The rewrites ``transform_for_annotation`` runs, in order (none by default)."""
        return ()

    def transform_for_annotation(self, model: GraphModule) -> GraphModule:
        """Run ``transforms()`` over ``model`` (prepare passes its own copy) and return it."""
        for transform in self.transforms():
            model = transform(model)
        return model

    def quantizes_statically(self, node: Node) -> bool:
        """Whether the rules give ``node`` a static (non-dynamic) activation config."""
        config = self.rules.resolve(node).config
        act = None if config is None else config.input_activation
        return act is not None and not act.is_dynamic

    def float_reasons(self) -> Mapping[OpOverload, str]:
        """Backend-specific reasons for ops this quantizer never quantizes (e.g. x86 SDPA);
        they replace the generic "unsupported op" reason in the coverage report."""
        return {}

    def supported_ops(self) -> frozenset[OpOverload]:
        """Ops some step of the recipe can annotate (for the coverage's default reasons)."""
        return frozenset()

    def set_global(self: _Q, quantization_config: QuantizationConfig | None) -> _Q:
        """The config of every op no more specific rule names (None: float)."""
        self._check_config(quantization_config, "set_global")
        self.rules.global_config = quantization_config
        return self

    def get_global_quantization_config(self) -> QuantizationConfig | None:
        return self.rules.global_config

    def _set_rule(
        self: _Q, kind: RuleKind, key: Any, config: QuantizationConfig | None, where: str
    ) -> _Q:
        """The body of every precedence setter: check ``config`` against the configs already
        set, store the rule (``where`` is the public setter's name, for errors) and return
        ``self``. Subclasses expose it under their public names."""
        self._check_config(config, where)
        if kind == "module_name":
            self.rules.set_module_name(key, config)
        elif kind == "module_type":
            self.rules.set_module_type(key, config)
        else:
            self.rules.set_function_type(key, config)
        return self

    def _check_config(self, config: QuantizationConfig | None, where: str) -> None:
        """Raise if ``config`` mixes QAT/PTQ or static/dynamic with the configs already set."""
        if config is None:
            return
        if not isinstance(config, QuantizationConfig):
            raise TypeError(f"{where}: expected a QuantizationConfig or None, found {config!r}")
        for other in self.rules.configs():
            if other.is_qat != config.is_qat:
                raise ValueError(
                    f"{type(self).__name__}.{where}: is_qat={config.is_qat} but an earlier "
                    f"config has is_qat={other.is_qat}; mixing QAT and PTQ is not supported"
                )
            a, b = config.input_activation, other.input_activation
            if a is not None and b is not None and a.is_dynamic != b.is_dynamic:
                raise ValueError(
                    f"{type(self).__name__}.{where}: is_dynamic={a.is_dynamic} but an earlier "
                    f"config has is_dynamic={b.is_dynamic}; mixing static and dynamic is not "
                    "supported"
                )

    def annotate(self, model: GraphModule) -> GraphModule:
        """Annotate ``model`` in place (see class docstring) and return it. Ops carrying
        masking constants stay float first (see ``annotators/masks.py``) unless
        ``set_mask_quantization(True)``."""
        if not self.rules.quantize_masks:
            keep_masks_float(model)
        for step in self.recipe():
            step(model, self.rules)
        name = type(self).__name__
        reasons = self.float_reasons()
        for node in model.graph.nodes:
            if node.op == "call_function" and node.target in reasons:
                set_float_reason(node, f"{name}: {reasons[node.target]}")
        fill_default_reasons(model, name, self.supported_ops())
        check_something_annotated(model, name, has_config=not self.rules.is_empty)
        return model

    def set_mask_quantization(self, quantize: bool) -> PatternQuantizer:
        """Expert opt-in: with True, ops carrying masking constants (dtype min/max, -inf,
        |x| >= 1e4 fills) are quantized like any other op instead of staying float."""
        if not isinstance(quantize, bool):
            raise TypeError(f"set_mask_quantization: expected a bool, found {quantize!r}")
        self.rules.quantize_masks = quantize
        return self

    def validate(self, model: GraphModule) -> None:
        """Raise if an annotation names an input that is not an input of its node."""
        for node in model.graph.nodes:
            ann = node.meta.get(Q_ANNOTATION_KEY)
            if not isinstance(ann, QuantizationAnnotation):
                continue
            for key in ann.input_qspec_map:
                if key not in node.all_input_nodes:
                    raise ValueError(
                        f"{type(self).__name__}: node '{node.name}' has an input spec for "
                        f"'{key}', which is not one of its inputs {node.all_input_nodes}"
                    )

    def coverage(self, model: GraphModule) -> CoverageReport:
        """The coverage report of an annotated ``model`` (see ``coverage.coverage``)."""
        return coverage(model)
