"""XNNPACKQuantizer: int8 asymmetric activations, int8 symmetric weights (XNNPACK / ARM NEON).

Recipe (torchao 0.18's testing XNNPACKQuantizer, found on the aten graph):

* linear [+ relu]; conv1d/conv2d [+ relu]; conv_transpose1d/2d [+ relu] (per-channel weight
  axis 1); QAT: conv [-> batch_norm] [+ relu]. The last node of each pattern is observed.
* add [+ relu], mul [+ relu], cat (shared qparams), adaptive_avg_pool2d (output shares the
  input's qparams).

``transform_for_annotation`` first removes eval-mode dropout (an identity that would split
patterns) and turns the scalar operand of every add/mul it will quantize statically
(``x + 1.0``, ``x * 0.5``) into a 0-d float buffer read by ``get_attr``, so the scalar is
quantized like a tensor operand (torchao's ``_convert_scalars_to_attrs``).
* pass-throughs (relu, hardtanh, max_pool2d, mean, view/reshape/permute/flatten/squeeze/...)
  share the producer's observer when it is observed.
* dynamic configs (``is_dynamic=True``): linear and ungrouped conv2d (groups == 1) only.

Unlike torchao, a residual add read only by normalization ops (transformers' residual stream,
``annotators/residual.py``) stays float with a coverage reason; ``set_residual_add_quantization
(True)`` quantizes it as torchao does. And a static per-channel linear whose int8 output only
float ops would read (attention projections, FFN linears) gets a per-token dynamic input and a
float output instead (``annotators/float_read_linears.py``; XNNPACK's dynamic GEMM);
``set_float_read_linear_dynamic(False)`` keeps torchao's static form.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.quantizer import QuantizationConfig
from pt2q.quantizers.annotators.binary import BinaryFamily
from pt2q.quantizers.annotators.cat import annotate_cat
from pt2q.quantizers.annotators.float_read_linears import make_float_read_linears_dynamic
from pt2q.quantizers.annotators.residual import keep_residual_adds_float
from pt2q.quantizers.annotators.shared import annotate_input_output_sharing, propagate_sharing
from pt2q.quantizers.annotators.weighted import WeightedFamily
from pt2q.quantizers.config_builder import activation_spec, build_config, symmetric_weight_spec
from pt2q.quantizers.config_rules import ConfigRules
from pt2q.quantizers.llm.config import llm_config
from pt2q.quantizers.op_tables import (
    ADAPTIVE_AVG_POOL_OPS,
    ADD_OPS,
    CAT_OPS,
    MAX_POOL_OPS,
    MUL_OPS,
    PASS_THROUGH_OPS,
    RELU_OPS,
    OpOverload,
    aten,
)
from pt2q.quantizers.pattern_quantizer import AnnotationStep, GraphTransform, PatternQuantizer
from pt2q.quantizers.transforms.eval_dropout import remove_eval_dropout
from pt2q.quantizers.transforms.scalar_operands import convert_scalar_operands

__all__ = ["XNNPACKQuantizer", "get_symmetric_quantization_config"]

_BACKEND = "XNNPACK"
_STATIC_ONLY = "XNNPACK dynamic quantization covers linear and ungrouped conv2d only"

XNNPACK_LINEAR = WeightedFamily(
    name="linear",
    anchor_ops=frozenset({aten.linear.default}),
    unary_post_ops=RELU_OPS,
    backend=_BACKEND,
)
XNNPACK_CONV2D = WeightedFamily(
    name="conv",
    anchor_ops=frozenset({aten.conv2d.default, aten.conv2d.padding}),
    unary_post_ops=RELU_OPS,
    grouped_dynamic_ok=False,
    backend=_BACKEND,
)
XNNPACK_CONV1D = WeightedFamily(
    name="conv",
    anchor_ops=frozenset({aten.conv1d.default, aten.conv1d.padding}),
    unary_post_ops=RELU_OPS,
    dynamic_unsupported=_STATIC_ONLY,
    backend=_BACKEND,
)
XNNPACK_CONV_TRANSPOSE = WeightedFamily(
    name="conv_transpose",
    anchor_ops=frozenset({aten.conv_transpose1d.default, aten.conv_transpose2d.input}),
    unary_post_ops=RELU_OPS,
    weight_ch_axis=1,
    dynamic_unsupported=_STATIC_ONLY,
    backend=_BACKEND,
)
XNNPACK_ADD = BinaryFamily(ops=ADD_OPS, relu_ops=RELU_OPS)
XNNPACK_MUL = BinaryFamily(ops=MUL_OPS, relu_ops=RELU_OPS)
# Ops whose output reuses the producer's observer (torchao's _is_share_obs_or_fq_op, + a few
# more pure re-arrangements).
XNNPACK_SHARING_OPS: frozenset[OpOverload] = (
    PASS_THROUGH_OPS
    | RELU_OPS
    | MAX_POOL_OPS
    | ADAPTIVE_AVG_POOL_OPS
    | frozenset({aten.hardtanh.default, aten.hardtanh_.default, aten.mean.default, aten.mean.dim})
)


@functools.lru_cache
def get_symmetric_quantization_config(
    is_per_channel: bool = False,
    is_qat: bool = False,
    is_dynamic: bool = False,
    act_qmin: int = -128,
    act_qmax: int = 127,
    weight_qmin: int = -127,
    weight_qmax: int = 127,
) -> QuantizationConfig:
    """int8 per-tensor affine activations [act_qmin, act_qmax] (HistogramObserver; dynamic:
    PlaceholderObserver; QAT: FusedMovingAvgObsFakeQuantize), int8 symmetric weights
    [weight_qmin, weight_qmax] per-tensor (MinMaxObserver) or per-channel on axis 0
    (PerChannelMinMaxObserver), float bias. Dynamic configs have no output spec."""
    act = activation_spec(torch.int8, act_qmin, act_qmax, is_qat=is_qat, is_dynamic=is_dynamic)
    weight = symmetric_weight_spec(
        torch.int8, weight_qmin, weight_qmax, per_channel=is_per_channel, is_qat=is_qat
    )
    return build_config(act, weight, is_qat=is_qat, observe_output=not is_dynamic)


class XNNPACKQuantizer(PatternQuantizer):
    """See the module docstring. Setters return ``self``; None leaves matching ops float.
    Precedence: module name > module type > operator type > global; ``set_filter_function``
    drops every node it returns False for. Mixing QAT/PTQ or static/dynamic raises."""

    def __init__(self) -> None:
        super().__init__()
        self.quantize_residual_adds = False
        self.float_read_linear_dynamic = True

    def transforms(self) -> Sequence[GraphTransform]:
        return (
            remove_eval_dropout,
            lambda gm: convert_scalar_operands(gm, ADD_OPS | MUL_OPS, self.quantizes_statically),
        )

    def recipe(self) -> Sequence[AnnotationStep]:
        return [
            self._keep_residual_adds_float,
            XNNPACK_LINEAR.annotate,
            XNNPACK_CONV2D.annotate,
            XNNPACK_CONV1D.annotate,
            XNNPACK_CONV_TRANSPOSE.annotate,
            lambda gm, rules: annotate_input_output_sharing(gm, ADAPTIVE_AVG_POOL_OPS, rules),
            XNNPACK_ADD.annotate,
            XNNPACK_MUL.annotate,
            annotate_cat,
            self._make_float_read_linears_dynamic,
            lambda gm, rules: propagate_sharing(gm, XNNPACK_SHARING_OPS),
        ]

    def _keep_residual_adds_float(self, gm: GraphModule, rules: ConfigRules) -> None:
        """Recipe step: residual adds stay float unless ``set_residual_add_quantization(True)``."""
        if not self.quantize_residual_adds:
            keep_residual_adds_float(gm)

    def _make_float_read_linears_dynamic(self, gm: GraphModule, rules: ConfigRules) -> None:
        """Recipe step: static linears read only by float ops turn per-token dynamic (not under
        QAT, nor with ``set_float_read_linear_dynamic(False)``)."""
        if self.float_read_linear_dynamic and not any(c.is_qat for c in rules.configs()):
            dynamic = llm_config("8da8w").input_activation
            assert dynamic is not None
            make_float_read_linears_dynamic(
                gm, XNNPACK_LINEAR.anchor_ops, XNNPACK_SHARING_OPS, dynamic
            )

    def supported_ops(self) -> frozenset[OpOverload]:
        return (
            XNNPACK_LINEAR.anchor_ops
            | XNNPACK_CONV2D.anchor_ops
            | XNNPACK_CONV1D.anchor_ops
            | XNNPACK_CONV_TRANSPOSE.anchor_ops
            | ADAPTIVE_AVG_POOL_OPS
            | ADD_OPS
            | MUL_OPS
            | CAT_OPS
            | MAX_POOL_OPS
        )

    def set_operator_type(
        self,
        operator_type: OpOverload | torch._ops.OpOverloadPacket | Callable[..., Any],
        quantization_config: QuantizationConfig | None,
    ) -> XNNPACKQuantizer:
        """Config for an aten op (``torch.ops.aten.linear`` or ``.default``) or a function."""
        return self._set_rule(
            "function_type", operator_type, quantization_config, "set_operator_type"
        )

    def set_module_type(
        self, module_type: type[torch.nn.Module], quantization_config: QuantizationConfig | None
    ) -> XNNPACKQuantizer:
        """Config for every op inside a module of ``module_type`` (innermost match wins)."""
        return self._set_rule("module_type", module_type, quantization_config, "set_module_type")

    def set_module_name(
        self, module_name: str, quantization_config: QuantizationConfig | None
    ) -> XNNPACKQuantizer:
        """Config for every op inside the submodule ``module_name``."""
        return self._set_rule("module_name", module_name, quantization_config, "set_module_name")

    def set_residual_add_quantization(self, quantize: bool) -> XNNPACKQuantizer:
        """With True, residual adds read only by normalization ops are quantized (torchao's
        behaviour) instead of staying float (see ``annotators/residual.py``)."""
        if not isinstance(quantize, bool):
            raise TypeError(f"set_residual_add_quantization: expected a bool, found {quantize!r}")
        self.quantize_residual_adds = quantize
        return self

    def set_float_read_linear_dynamic(self, dynamic: bool) -> XNNPACKQuantizer:
        """With False, a static linear read only by float ops keeps its int8 output (torchao's
        behaviour) instead of turning per-token dynamic (``annotators/float_read_linears.py``)."""
        if not isinstance(dynamic, bool):
            raise TypeError(f"set_float_read_linear_dynamic: expected a bool, found {dynamic!r}")
        self.float_read_linear_dynamic = dynamic
        return self

    def set_filter_function(self, filter_fn: Callable[[Node], bool] | None) -> XNNPACKQuantizer:
        """Only nodes for which ``filter_fn(node)`` is True are quantized (None: no filter)."""
        if filter_fn is not None and not callable(filter_fn):
            raise TypeError(
                f"set_filter_function: expected a callable or None, found {filter_fn!r}"
            )
        self.rules.node_filter = filter_fn
        return self
