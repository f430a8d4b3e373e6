"""convert_pt2e(use_reference_representation=True): the integer reference representation.

Each case calibrates one prepared model, converts a copy to the q/dq program and a copy to the
reference representation, then checks the structure of the latter exactly (no q/dq left, the
integer op runs on int32) and its outputs against the q/dq program within
QDQ_VS_HAND_REFERENCE_STEPS steps of the output scale; the result must re-export.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable

import pytest
import torch
from core_quantizer import CoreQuantizer
from torch import nn
from torch.fx import GraphModule
from torch.fx.passes.shape_prop import ShapeProp

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.observer import MinMaxObserver
from pt2q.quantizer import (
    QuantizationAnnotation,
    QuantizationSpec,
    Quantizer,
    SharedQuantizationSpec,
)
from pt2q.quantizers import XNNPACKQuantizer, get_symmetric_quantization_config
from pt2q.tolerances import QDQ_VS_HAND_REFERENCE_STEPS, assert_within_steps

aten = torch.ops.aten
qd = torch.ops.quantized_decomposed
ACT_I8 = QuantizationSpec(torch.int8, MinMaxObserver, -128, 127, torch.per_tensor_affine)
W_PT = QuantizationSpec(torch.int8, MinMaxObserver, -127, 127, torch.per_tensor_symmetric)


class PerTensorQuantizer(Quantizer):
    """int8 affine activations, int8 per-tensor symmetric weights, float bias; linear/conv2d
    (+ a following relu fused), add (+relu), max_pool2d (output shares the input)."""

    def annotate(self, model: GraphModule) -> GraphModule:
        for node in model.graph.nodes:
            users = list(node.users)
            fused_relu = len(users) == 1 and users[0].target == aten.relu.default
            out = None if fused_relu else ACT_I8
            if node.target in (aten.linear.default, aten.conv2d.default):
                qmap = {node.args[0]: ACT_I8, node.args[1]: W_PT}
            elif node.target == aten.add.Tensor:
                qmap = {node.args[0]: ACT_I8, node.args[1]: ACT_I8}
            elif node.target == aten.relu.default and node.args[0].meta.get(
                "quantization_annotation"
            ):
                qmap, out = {}, ACT_I8
            elif node.target == aten.max_pool2d.default:
                qmap = {node.args[0]: ACT_I8}
                out = SharedQuantizationSpec((node.args[0], node))  # type: ignore[assignment]
            else:
                continue
            node.meta["quantization_annotation"] = QuantizationAnnotation(
                input_qspec_map=qmap,  # type: ignore[arg-type]
                output_qspec=out,
                _annotated=True,
            )
        return model

    def validate(self, model: GraphModule) -> None:
        return None


class Add(nn.Module):
    def __init__(self, relu: bool) -> None:
        super().__init__()
        self.relu = relu

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        y = a + b
        return torch.relu(y) if self.relu else y


class ConvPool(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.max_pool2d(self.conv(x), 2)


class ConvLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.linear = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.relu(self.conv(x)).flatten(1))


def _both(
    model: nn.Module, quantizer: Quantizer, *args: torch.Tensor
) -> tuple[GraphModule, GraphModule]:
    """(q/dq program, reference representation) of ``model`` calibrated on ``args``."""
    gm = torch.export.export(model.eval(), args).module()
    prepared = prepare_pt2e(gm, quantizer)
    prepared(*args)
    ref = convert_pt2e(copy.deepcopy(prepared), use_reference_representation=True)
    return convert_pt2e(prepared), ref


def _targets(gm: GraphModule) -> Counter[str]:
    return Counter(str(n.target) for n in gm.graph.nodes if n.op == "call_function")


def _qd_ops(gm: GraphModule) -> list[str]:
    return [t for t in _targets(gm) if t.startswith("quantized_decomposed")]


def _check_numerics_and_export(qdq: GraphModule, ref: GraphModule, *args: torch.Tensor) -> None:
    (out_dq,) = [n for n in qdq.graph.nodes if n.op == "output"][0].args[0]
    assert out_dq.target == qd.dequantize_per_tensor.default, out_dq.format_node()
    out_scale = out_dq.args[1]
    expected = qdq(*args)
    actual = ref(*args)
    # Both outputs are dequantized values (q - z) * scale in float32: compare them on the integer
    # grid (float32 products put a difference of exactly one step at 1 + 1e-7 steps otherwise).
    # Same quantized math, int32 accumulation and one rounding: within the q/dq policy.
    assert_within_steps(
        torch.round(actual / out_scale),
        torch.round(expected / out_scale),
        1.0,
        QDQ_VS_HAND_REFERENCE_STEPS,
        "reference vs q/dq output, in output steps",
    )
    reexported = torch.export.export(ref, args).module()
    assert torch.equal(reexported(*args), actual)


def _int_op_dtypes(gm: GraphModule, target: object, *args: torch.Tensor) -> list[torch.dtype]:
    """Output dtype of every ``target`` node when ``gm`` runs on ``args``."""
    ShapeProp(gm).propagate(*args)
    return [n.meta["tensor_meta"].dtype for n in gm.graph.nodes if n.target == target]


torch.manual_seed(0)
X2 = torch.randn(4, 8)
X4 = torch.randn(2, 3, 8, 8)

Case = tuple[Callable[[], nn.Module], Callable[[], Quantizer], tuple[torch.Tensor, ...], object]
CASES: dict[str, Case] = {
    "linear_pt_weight": (lambda: nn.Linear(8, 4), PerTensorQuantizer, (X2,), aten.linear.default),
    "linear_pt_weight_no_bias": (
        lambda: nn.Linear(8, 4, bias=False),
        PerTensorQuantizer,
        (X2,),
        aten.linear.default,
    ),
    "linear_pc_weight_int32_bias": (
        lambda: nn.Linear(8, 4),
        CoreQuantizer,
        (X2,),
        aten.linear.default,
    ),
    "linear_relu_pt_weight": (
        lambda: nn.Sequential(nn.Linear(8, 4), nn.ReLU()),
        PerTensorQuantizer,
        (X2,),
        aten.linear.default,
    ),
    "conv2d_pt_weight": (
        lambda: nn.Conv2d(3, 4, 3),
        PerTensorQuantizer,
        (X4,),
        aten.conv2d.default,
    ),
    "conv2d_pc_weight_int32_bias": (
        lambda: nn.Conv2d(3, 4, 3),
        CoreQuantizer,
        (X4,),
        aten.conv2d.default,
    ),
    "conv2d_relu_pt_weight": (
        lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()),
        PerTensorQuantizer,
        (X4,),
        aten.conv2d.default,
    ),
    # add works on centered int32 inputs scaled by float multipliers (no int32 op to check):
    # None skips the integer-op checks, test_add_graph_op_counts checks its structure.
    "add": (lambda: Add(relu=False), PerTensorQuantizer, (X2, 2 * X2.flip(0)), None),
    "add_relu": (lambda: Add(relu=True), PerTensorQuantizer, (X2, X2.flip(1)), None),
    "max_pool2d": (ConvPool, CoreQuantizer, (X4,), aten.max_pool2d.default),
}


@pytest.mark.parametrize("name", list(CASES))
def test_pattern_rewritten_to_integer_ops(name: str) -> None:
    make_model, make_quantizer, args, op = CASES[name]
    torch.manual_seed(0)
    qdq, ref = _both(make_model(), make_quantizer(), *args)
    assert _qd_ops(ref) == []  # every q/dq became arithmetic or was absorbed by a pattern
    if op is not None:
        assert _targets(ref)[str(op)] == 1
        assert _int_op_dtypes(ref, op, *args) == [torch.int32]  # integer accumulation
    _check_numerics_and_export(qdq, ref, *args)


def test_linear_per_tensor_graph_op_counts() -> None:
    qdq, ref = _both(nn.Linear(8, 4), PerTensorQuantizer(), X2)
    assert _targets(qdq) == Counter(
        {
            "quantized_decomposed.quantize_per_tensor.default": 2,
            "quantized_decomposed.dequantize_per_tensor.default": 3,
            "aten.linear.default": 1,
        }
    )
    # input q: mul/round/add/clamp/to; linear: 2 centerings (to+sub), int32 linear, bias
    # view/div/round/to + add, requantize to/mul/round/to/add/clamp/to; output dq: to/sub/mul.
    assert _targets(ref) == Counter(
        {
            "aten._to_copy.default": 8,
            "aten.mul.Tensor": 3,
            "aten.round.default": 3,
            "aten.add.Tensor": 3,
            "aten.clamp.default": 2,
            "aten.sub.Tensor": 3,
            "aten.linear.default": 1,
            "aten.view.default": 1,
            "aten.div.Tensor": 1,
        }
    )


def test_add_relu_graph_op_counts() -> None:
    _, ref = _both(Add(relu=True), PerTensorQuantizer(), X2, X2.flip(1))
    # 2 input q: mul/round/add/clamp/to each; add: 2 x (to int32, sub, to f32, mul), add,
    # round, to int32, add zp, clamp at max(qmin, zp) (the relu), to int8; output dq: to/sub/mul.
    assert _targets(ref) == Counter(
        {
            "aten._to_copy.default": 9,
            "aten.mul.Tensor": 5,
            "aten.round.default": 3,
            "aten.add.Tensor": 4,
            "aten.clamp.default": 3,
            "aten.sub.Tensor": 3,
        }
    )
    assert "aten.relu.default" not in _targets(ref)


def test_unmatched_op_keeps_qdq_around_it_and_runs() -> None:
    # sigmoid has fixed output qparams in CoreQuantizer and no reference pattern: its input dq
    # and output q become standalone arithmetic, the sigmoid itself stays float.
    qdq, ref = _both(nn.Sigmoid(), CoreQuantizer(), X2)
    assert _targets(ref)["aten.sigmoid.default"] == 1
    assert _qd_ops(ref) == []
    _check_numerics_and_export(qdq, ref, X2)


def test_dynamic_quantization_is_left_in_qdq_form() -> None:
    qdq, ref = _both(nn.Linear(8, 4), CoreQuantizer(dynamic=True), X2)
    assert "quantized_decomposed.choose_qparams.tensor" in _qd_ops(ref)
    assert torch.equal(ref(X2), qdq(X2))


def test_xnnpack_conv_relu_linear_per_channel() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    quantizer = XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True)
    )
    qdq, ref = _both(ConvLinear(), quantizer, x)
    assert _qd_ops(ref) == []
    assert _int_op_dtypes(ref, aten.conv2d.default, x) == [torch.int32]
    assert _int_op_dtypes(ref, aten.linear.default, x) == [torch.int32]
    _check_numerics_and_export(qdq, ref, x)
