"""X86InductorQuantizer: uint8 activations, int8 per-channel weights, fusable by Inductor x86.

Recipe (the same annotations as torchao 0.18's X86InductorQuantizer, found on the aten graph):

* conv1d/conv2d (incl. ``padding="same"``) [+ relu/hardtanh/relu6/hardswish/silu]
  [+ add (extra input quantized) [+ relu]]; QAT: conv -> batch_norm is matched too.
* linear (2-D or N-D input) [+ relu/gelu] [+ add (extra input float) [+ relu]]. Under a
  static PTQ config a linear with no fused relu/gelu and no uint8 conv / linear output feeding
  it (GELU outputs excepted) gets a per-token dynamic input instead of torchao's static one (``annotators/token_linears.py``; ``set_token_dynamic_linears(False)``
  keeps torchao's).
  These are exactly the post-ops torch 2.13 ``_inductor/fx_passes/quantization.py`` fuses into
  ``qconv_pointwise`` / ``qlinear_pointwise``; any other order (``linear -> relu -> add``) fuses
  what it can and leaves the rest float with a reason in the coverage report.
* mul of two same-shape tensors; matmul only when opted in
  (``set_function_type_qconfig(torch.matmul, config)``).
* never: scaled_dot_product_attention and bmm (Inductor in torch 2.13 has no int8 SDPA or int8
  bmm fusion); the coverage report says so for each such node, and for a matmul not opted in.
* int8-in-int8-out propagation: max_pool2d, avg_pool2d, adaptive_avg_pool2d, cat, flatten,
  view/reshape get int8 in/out (output shares the input's qparams) behind int8 producers,
  only inside an int8 chain (their output reaches an int8 consumer: no wasted q/dq).

``transform_for_annotation`` removes eval-mode dropout first (``aten.dropout(x, p, False)`` is
an identity that would hide BERT's ``dense -> dropout -> add(residual)`` from the linear+add
fusion); train-mode dropout (QAT) is kept.

Conv/linear outputs are not observed themselves: the next quantized consumer's input spec
quantizes them, as Inductor expects (``dq -> conv -> q`` only when a consumer wants int8).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch.fx import GraphModule

from pt2q.quantizer import QuantizationConfig, QuantizationSpec
from pt2q.quantizers.annotators.binary import BinaryFamily
from pt2q.quantizers.annotators.int8_propagation import Int8PropagationFamily
from pt2q.quantizers.annotators.matmul import MatmulFamily
from pt2q.quantizers.annotators.token_linears import make_linears_token_dynamic
from pt2q.quantizers.annotators.weighted import WeightedFamily
from pt2q.quantizers.config_builder import activation_spec, build_config, symmetric_weight_spec
from pt2q.quantizers.config_rules import ConfigRules
from pt2q.quantizers.llm.config import llm_config
from pt2q.quantizers.op_tables import (
    ACTIVATION_OPS,
    ADAPTIVE_AVG_POOL_OPS,
    ADD_OPS,
    ATTENTION_OPS,
    AVG_POOL_OPS,
    CAT_OPS,
    MAX_POOL_OPS,
    RELU_OPS,
    OpOverload,
    aten,
)
from pt2q.quantizers.pattern_quantizer import AnnotationStep, GraphTransform, PatternQuantizer
from pt2q.quantizers.transforms.eval_dropout import remove_eval_dropout

__all__ = [
    "X86InductorQuantizer",
    "get_default_x86_inductor_quantization_config",
    "get_x86_inductor_linear_dynamic_fp16_config",
]

_BACKEND = "x86 Inductor"

# Unary post-ops Inductor's x86 int8 passes fuse into qconv / qlinear
# (torch/_inductor/fx_passes/quantization.py: relu, hardtanh, hardswish, relu6 (as hardtanh
# 0..6), silu; gelu is fused for linear only).
X86_UNARY_POST_OPS: frozenset[OpOverload] = ACTIVATION_OPS - {aten.gelu.default}

X86_CONV = WeightedFamily(
    name="conv",
    anchor_ops=frozenset(
        {aten.conv1d.default, aten.conv1d.padding, aten.conv2d.default, aten.conv2d.padding}
    ),
    unary_post_ops=X86_UNARY_POST_OPS,
    binary_post_ops=ADD_OPS,
    binary_unary_post_ops=RELU_OPS,
    quantize_extra_input=True,
    observe_output=False,
    dynamic_unsupported="x86 Inductor has no dynamic int8 conv; left float",
    backend=_BACKEND,
)
X86_LINEAR = WeightedFamily(
    name="linear",
    anchor_ops=frozenset({aten.linear.default}),
    unary_post_ops=RELU_OPS | frozenset({aten.gelu.default}),
    binary_post_ops=ADD_OPS,
    binary_unary_post_ops=RELU_OPS,
    quantize_extra_input=False,  # Inductor's qlinear binary wants the extra input in float
    observe_output=False,
    backend=_BACKEND,
)
X86_MUL = BinaryFamily(ops=frozenset({aten.mul.Tensor}), observe_output=False, same_shape=True)
_NO_INT8_BMM = "Inductor x86 (torch 2.13) has no int8 bmm/matmul fusion"
X86_MATMUL = MatmulFamily(
    ops=frozenset({aten.matmul.default}),
    opt_in=True,
    not_opted_in_reason=(
        f"X86InductorQuantizer: {_NO_INT8_BMM}: matmul stays float unless opted in with "
        "set_function_type_qconfig(torch.matmul, config)"
    ),
)
# Ops the x86 recipe never quantizes, with the reason the coverage report gives.
X86_FLOAT_REASONS: Mapping[OpOverload, str] = MappingProxyType(
    {
        **dict.fromkeys(
            ATTENTION_OPS,
            "Inductor x86 (torch 2.13) has no int8 scaled_dot_product_attention fusion: "
            "SDPA stays float",
        ),
        aten.bmm.default: f"{_NO_INT8_BMM}: bmm stays float",
    }
)
_RESHAPES = frozenset({aten.flatten.using_ints, aten.view.default, aten.reshape.default})
X86_INT8_PROPAGATION = Int8PropagationFamily(
    ops=MAX_POOL_OPS | AVG_POOL_OPS | ADAPTIVE_AVG_POOL_OPS | CAT_OPS | _RESHAPES,
)


@functools.lru_cache
def get_default_x86_inductor_quantization_config(
    is_qat: bool = False, is_dynamic: bool = False, reduce_range: bool = False
) -> QuantizationConfig:
    """uint8 affine activations [0, 255] ([0, 127] with ``reduce_range``, for CPUs without
    VNNI), int8 per-channel symmetric weights [-128, 127] on axis 0, float bias.

    Observers: HistogramObserver (PTQ static), PlaceholderObserver (dynamic: qparams chosen at
    run time), FusedMovingAvgObsFakeQuantize (QAT); weights PerChannelMinMaxObserver (QAT: the
    fused fake-quant over MovingAveragePerChannelMinMaxObserver). eps = 2**-12 everywhere.
    """
    act = activation_spec(
        torch.uint8, 0, 127 if reduce_range else 255, is_qat=is_qat, is_dynamic=is_dynamic
    )
    weight = symmetric_weight_spec(torch.int8, -128, 127, per_channel=True, is_qat=is_qat)
    return build_config(act, weight, is_qat=is_qat)


@functools.lru_cache
def get_x86_inductor_linear_dynamic_fp16_config() -> QuantizationConfig:
    """float16 weights, float activations (torchao's "linear_dynamic_fp16"; the seed docs'
    ``float16_dynamic_qconfig``): convert stores each weight as a float16 round trip
    (``convert_element_type.no_fuse`` to float16 and back) and the op computes in float32.
    Meant for linear: ``set_module_type_qconfig(torch.nn.Linear, config)``."""
    from pt2q.observer import PlaceholderObserver

    weight = QuantizationSpec(dtype=torch.float16, observer_or_fake_quant_ctr=PlaceholderObserver)
    return QuantizationConfig(None, None, weight, None)


class X86InductorQuantizer(PatternQuantizer):
    """See the module docstring. Setters return ``self``; a None config leaves matching ops
    float. Precedence: module name > module type > function type > global. Mixing QAT and PTQ,
    or static and dynamic, configs raises ValueError."""

    # Families in annotation order (fusions first, int8 propagation last); each carries its
    # annotator.
    RECIPE = (X86_CONV, X86_LINEAR, X86_MATMUL, X86_MUL, X86_INT8_PROPAGATION)

    def __init__(self) -> None:
        super().__init__()
        self.token_dynamic_linears = True

    def transforms(self) -> Sequence[GraphTransform]:
        return (remove_eval_dropout,)

    def recipe(self) -> Sequence[AnnotationStep]:
        steps: list[AnnotationStep] = [family.annotate for family in self.RECIPE]
        # after the linears are matched, before int8 propagation reads their input specs
        steps.insert(self.RECIPE.index(X86_LINEAR) + 1, self._make_linears_token_dynamic)
        return steps

    def _make_linears_token_dynamic(self, gm: GraphModule, rules: ConfigRules) -> None:
        """Recipe step: static linears with no fused activation and no int8 chain behind them
        get per-token dynamic inputs (``annotators/token_linears.py``; not under QAT, nor with
        ``set_token_dynamic_linears(False)``)."""
        if self.token_dynamic_linears and not any(c.is_qat for c in rules.configs()):
            dynamic = llm_config("8da8w").input_activation
            assert dynamic is not None
            make_linears_token_dynamic(
                gm,
                X86_LINEAR.anchor_ops,
                X86_LINEAR.unary_post_ops,
                X86_INT8_PROPAGATION.ops,
                dynamic,
            )

    def set_token_dynamic_linears(self, dynamic: bool) -> X86InductorQuantizer:
        """With False, every linear keeps its config's static per-tensor input (torchao's
        behaviour) instead of a per-token dynamic one (``annotators/token_linears.py``)."""
        if not isinstance(dynamic, bool):
            raise TypeError(f"set_token_dynamic_linears: expected a bool, found {dynamic!r}")
        self.token_dynamic_linears = dynamic
        return self

    def float_reasons(self) -> Mapping[OpOverload, str]:
        return X86_FLOAT_REASONS

    def supported_ops(self) -> frozenset[OpOverload]:
        return (
            X86_CONV.anchor_ops
            | X86_LINEAR.anchor_ops
            | X86_MATMUL.ops
            | X86_MUL.ops
            | X86_INT8_PROPAGATION.ops
            | ADD_OPS
        )

    def set_function_type_qconfig(
        self,
        function_type: Callable[..., Any] | OpOverload,
        quantization_config: QuantizationConfig | None,
    ) -> X86InductorQuantizer:
        """Config for every call of ``function_type`` (``torch.nn.functional.linear``,
        ``torch.matmul``, ``torch.ops.aten.conv2d.default``, ...)."""
        where = "set_function_type_qconfig"
        return self._set_rule("function_type", function_type, quantization_config, where)

    def set_module_type_qconfig(
        self, module_type: type[torch.nn.Module], quantization_config: QuantizationConfig | None
    ) -> X86InductorQuantizer:
        """Config for every op inside a module of ``module_type`` (innermost match wins)."""
        where = "set_module_type_qconfig"
        return self._set_rule("module_type", module_type, quantization_config, where)

    def set_module_name_qconfig(
        self, module_name: str, quantization_config: QuantizationConfig | None
    ) -> X86InductorQuantizer:
        """Config for every op inside the submodule ``module_name`` (e.g. ``"encoder.layer.0"``)."""
        where = "set_module_name_qconfig"
        return self._set_rule("module_name", module_name, quantization_config, where)
