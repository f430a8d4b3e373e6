"""prepare_pt2e -> calibrate -> convert_pt2e with each recipe: exact q/dq counts and structure."""

from __future__ import annotations

from collections.abc import Callable

import expecttest
import pytest
import torch
from helpers import count_qdq, export
from models import (
    Conv1dOnly,
    ConvAddRelu,
    ConvPoolCat,
    ConvSame,
    ConvTransposeRelu,
    Linear3d,
    LinearReluAdd,
    ReusedReluBlock,
)
from torch import nn

from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizer import Quantizer
from pt2q.quantizers import (
    X86InductorQuantizer,
    XNNPACKQuantizer,
    get_default_x86_inductor_quantization_config,
    get_symmetric_quantization_config,
)
from pt2q.tolerances import QDQ_VS_HAND_REFERENCE_STEPS


def x86() -> Quantizer:
    # torchao's static linears: these goldens are its annotations (token_linears.py: the default)
    q = X86InductorQuantizer().set_token_dynamic_linears(False)
    return q.set_global(get_default_x86_inductor_quantization_config())


def xnn() -> Quantizer:
    return XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))


def quantize(model: nn.Module, x: torch.Tensor, q: Quantizer) -> torch.fx.GraphModule:
    torch.manual_seed(0)
    prepared = prepare_pt2e(export(model, x), q)
    prepared(x)
    return convert_pt2e(prepared)


def qdq(q: int, dq: int, dq_channel: int) -> dict[str, int]:
    return {
        "dequantize_per_channel.default": dq_channel,
        "dequantize_per_tensor.default": dq,
        "quantize_per_tensor.default": q,
    }


@pytest.mark.parametrize(
    "model, shape, make_quantizer, expected",
    [
        # x, relu->pool, pool out, conv2/conv3 outs -> cat, cat out, avgpool out, flatten out
        pytest.param(ConvPoolCat, (2, 3, 8, 8), x86, qdq(8, 9, 4), id="x86_pools_cat"),
        pytest.param(ConvPoolCat, (2, 3, 8, 8), xnn, qdq(9, 10, 4), id="xnnpack_pools_cat"),
        # x is quantized once and dequantized for the conv and for the add's extra input
        pytest.param(ConvAddRelu, (1, 8, 6, 6), x86, qdq(1, 2, 1), id="x86_conv_add_relu"),
        pytest.param(ReusedReluBlock, (1, 8, 6, 6), x86, qdq(2, 3, 2), id="x86_reused_relu"),
        pytest.param(LinearReluAdd, (2, 16), x86, qdq(1, 1, 1), id="x86_linear_relu_add"),
        pytest.param(LinearReluAdd, (2, 16), xnn, qdq(3, 4, 1), id="xnnpack_linear_relu_add"),
        pytest.param(Linear3d, (2, 5, 16), x86, qdq(1, 1, 1), id="x86_linear_3d"),
        pytest.param(Conv1dOnly, (1, 4, 10), x86, qdq(1, 1, 1), id="x86_conv1d"),
        pytest.param(ConvSame, (1, 3, 8, 8), x86, qdq(1, 1, 1), id="x86_padding_same"),
        pytest.param(ConvTransposeRelu, (1, 4, 3, 3), xnn, qdq(2, 2, 1), id="xnnpack_deconv"),
    ],
)
def test_qdq_counts(
    model: type[nn.Module],
    shape: tuple[int, ...],
    make_quantizer: Callable[[], Quantizer],
    expected: dict[str, int],
) -> None:
    torch.manual_seed(0)
    m = model().eval()
    x = torch.randn(shape)
    converted = quantize(m, x, make_quantizer())
    assert count_qdq(converted) == expected
    # The reference program stays close to float (a loose sanity bound, not a kernel check).
    assert (
        torch.nn.functional.cosine_similarity(converted(x).flatten(), m(x).flatten(), dim=0) > 0.99
    )


def _ops(gm: torch.fx.GraphModule) -> str:
    return "\n".join(
        str(n.target).replace("quantized_decomposed.", "qd.")
        for n in gm.graph.nodes
        if n.op == "call_function"
    )


class TestConvertedStructure(expecttest.TestCase):
    def test_x86_conv_add_relu_ops(self) -> None:
        converted = quantize(ConvAddRelu().eval(), torch.randn(1, 8, 6, 6), x86())
        self.assertExpectedInline(
            _ops(converted),
            """\
qd.quantize_per_tensor.default
qd.dequantize_per_channel.default
qd.dequantize_per_tensor.default
aten.conv2d.default
qd.dequantize_per_tensor.default
aten.add.Tensor
aten.relu.default""",
        )


def test_x86_weight_is_int8_per_channel_symmetric() -> None:
    torch.manual_seed(0)
    model = Conv1dOnly().eval()
    w_float = model.conv.weight.detach().clone()
    converted = quantize(model, torch.randn(1, 4, 10), x86())
    (dq,) = [
        n
        for n in converted.graph.nodes
        if n.target == torch.ops.quantized_decomposed.dequantize_per_channel.default
    ]
    weight, scales, zps, axis, qmin, qmax, dtype = dq.args
    assert (axis, qmin, qmax, dtype) == (0, -128, 127, torch.int8)
    assert torch.count_nonzero(getattr(converted, zps.target)) == 0  # symmetric
    w_int = getattr(converted, weight.target)
    s = getattr(converted, scales.target)
    err = (w_int.float() * s.view(-1, 1, 1) - w_float).abs().max() / s.max()
    # Round-to-nearest of the folded weight: within half a step (+ float slack) of float.
    assert err <= 0.5 * QDQ_VS_HAND_REFERENCE_STEPS + 1e-4
