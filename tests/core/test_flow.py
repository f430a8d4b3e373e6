"""The issue's acceptance case: a hand-written Quantizer drives prepare / calibrate / convert of
conv + maxpool + linear to a reference program >= 25 dB SQNR, maxpool sharing its input's
qparams; plus the golden converted graph and the structural guarantees of convert."""

from __future__ import annotations

import copy

import torch
from core_quantizer import CoreQuantizer
from expecttest import TestCase
from graph_text import count_ops, graph_text
from torch import nn

from pt2q import convert_pt2e, prepare_pt2e

qd = torch.ops.quantized_decomposed


class ConvPoolLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 3 * 3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))  # (N, 10)


def sqnr(ref: torch.Tensor, x: torch.Tensor) -> float:
    return float(20 * torch.log10(ref.norm() / (ref - x).norm()))


def quantized_model() -> tuple[nn.Module, torch.fx.GraphModule, torch.Tensor]:
    torch.manual_seed(0)
    model = ConvPoolLinear().eval()
    x = torch.randn(4, 3, 8, 8)
    exported = torch.export.export(model, (x,)).module()
    prepared = prepare_pt2e(exported, CoreQuantizer())
    for _ in range(8):
        prepared(torch.randn(4, 3, 8, 8))
    return model, convert_pt2e(prepared), x


def test_conv_maxpool_linear_sqnr_at_least_25_db() -> None:
    model, converted, _ = quantized_model()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))  # unseen data
    with torch.no_grad():
        assert sqnr(model(x), converted(x)) >= 25.0


def test_maxpool_output_uses_its_input_qparams() -> None:
    _, converted, _ = quantized_model()
    pool = next(n for n in converted.graph.nodes if n.target == torch.ops.aten.max_pool2d.default)
    dq_in = pool.args[0]
    q_out = next(iter(pool.users))
    assert dq_in.target == qd.dequantize_per_tensor.default
    assert q_out.target == qd.quantize_per_tensor.default
    assert dq_in.args[1:] == q_out.args[1:]  # same scale, zero point, range, dtype


def test_weights_are_folded_to_int8_constants() -> None:
    _, converted, _ = quantized_model()
    counts = count_ops(converted)
    # 2 weights + 2 derived int32 biases keep only their dequantize
    assert counts["qd.dequantize_per_channel"] == 4
    assert "qd.quantize_per_channel" not in counts
    frozen = [n for n in converted.graph.nodes if n.op == "get_attr" and "frozen" in n.name]
    dtypes = sorted(str(getattr(converted, str(n.target)).dtype) for n in frozen)
    assert dtypes == ["torch.int32", "torch.int32", "torch.int8", "torch.int8"]
    assert not hasattr(converted.conv, "weight")  # float weight dropped


def test_user_model_is_not_mutated() -> None:
    torch.manual_seed(0)
    model = ConvPoolLinear().eval()
    x = torch.randn(2, 3, 8, 8)
    exported = torch.export.export(model, (x,)).module()
    code_before = exported.code
    state_before = copy.deepcopy(exported.state_dict())
    prepared = prepare_pt2e(exported, CoreQuantizer())
    prepared(x)
    convert_pt2e(prepared)
    assert exported.code == code_before
    assert state_before.keys() == exported.state_dict().keys()
    for k, v in exported.state_dict().items():
        assert torch.equal(v, state_before[k]), k


def test_qdq_nodes_keep_module_metadata() -> None:
    _, converted, _ = quantized_model()
    conv = next(n for n in converted.graph.nodes if n.target == torch.ops.aten.conv2d.default)
    q = next(iter(conv.users))
    assert q.target == qd.quantize_per_tensor.default
    assert "nn_module_stack" in q.meta and "stack_trace" in q.meta


def test_converted_program_reexports_and_saves(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, converted, x = quantized_model()
    ep = torch.export.export(converted, (x,))
    path = tmp_path / "q.pt2"
    torch.export.save(ep, str(path))
    loaded = torch.export.load(str(path)).module()
    torch.testing.assert_close(loaded(x), converted(x), rtol=0, atol=0)


class TestGolden(TestCase):
    def test_converted_graph(self) -> None:
        _, converted, _ = quantized_model()
        self.assertExpectedInline(
            graph_text(converted),
            """\
quantize_per_tensor_default = qd.quantize_per_tensor(x, <f>, 131, 0, 255, torch.uint8)
dequantize_per_channel_default = qd.dequantize_per_channel(_frozen_param0, _scale_0, _zero_point_0, 0, -128, 127, torch.int8)
dequantize_per_channel_default_1 = qd.dequantize_per_channel(_frozen_param1, _scale_1, _zero_point_1, 0, -2147483648, 2147483647, torch.int32)
dequantize_per_tensor_default = qd.dequantize_per_tensor(quantize_per_tensor_default, <f>, 131, 0, 255, torch.uint8)
conv2d = conv2d(dequantize_per_tensor_default, dequantize_per_channel_default, dequantize_per_channel_default_1)
quantize_per_tensor_default_1 = qd.quantize_per_tensor(conv2d, <f>, 125, 0, 255, torch.uint8)
dequantize_per_tensor_default_1 = qd.dequantize_per_tensor(quantize_per_tensor_default_1, <f>, 125, 0, 255, torch.uint8)
relu = relu(dequantize_per_tensor_default_1)
quantize_per_tensor_default_2 = qd.quantize_per_tensor(relu, <f>, 0, 0, 255, torch.uint8)
dequantize_per_tensor_default_2 = qd.dequantize_per_tensor(quantize_per_tensor_default_2, <f>, 0, 0, 255, torch.uint8)
max_pool2d = max_pool2d(dequantize_per_tensor_default_2, [2, 2], [2, 2])
quantize_per_tensor_default_3 = qd.quantize_per_tensor(max_pool2d, <f>, 0, 0, 255, torch.uint8)
dequantize_per_tensor_default_3 = qd.dequantize_per_tensor(quantize_per_tensor_default_3, <f>, 0, 0, 255, torch.uint8)
flatten = flatten.using_ints(dequantize_per_tensor_default_3, 1)
quantize_per_tensor_default_4 = qd.quantize_per_tensor(flatten, <f>, 0, 0, 255, torch.uint8)
dequantize_per_channel_default_2 = qd.dequantize_per_channel(_frozen_param2, _scale_2, _zero_point_2, 0, -128, 127, torch.int8)
dequantize_per_channel_default_3 = qd.dequantize_per_channel(_frozen_param3, _scale_3, _zero_point_3, 0, -2147483648, 2147483647, torch.int32)
dequantize_per_tensor_default_4 = qd.dequantize_per_tensor(quantize_per_tensor_default_4, <f>, 0, 0, 255, torch.uint8)
linear = linear(dequantize_per_tensor_default_4, dequantize_per_channel_default_2, dequantize_per_channel_default_3)
quantize_per_tensor_default_5 = qd.quantize_per_tensor(linear, <f>, 123, 0, 255, torch.uint8)
dequantize_per_tensor_default_5 = qd.dequantize_per_tensor(quantize_per_tensor_default_5, <f>, 123, 0, 255, torch.uint8)
return [dequantize_per_tensor_default_5]""",
        )

    def test_prepared_graph(self) -> None:
        torch.manual_seed(0)
        exported = torch.export.export(ConvPoolLinear().eval(), (torch.randn(1, 3, 8, 8),))
        prepared = prepare_pt2e(exported.module(), CoreQuantizer())
        self.assertExpectedInline(
            graph_text(prepared),
            """\
activation_post_process_5 = activation_post_process_4(conv_weight)
activation_post_process_6 = activation_post_process_5(conv_bias)
activation_post_process_8 = activation_post_process_6(fc_weight)
activation_post_process_9 = activation_post_process_7(fc_bias)
activation_post_process_4 = activation_post_process_3(x)
conv2d = conv2d(activation_post_process_4, activation_post_process_5, activation_post_process_6)
activation_post_process_0 = activation_post_process_0(conv2d)
relu = relu(activation_post_process_0)
activation_post_process_7 = activation_post_process_1(relu)
max_pool2d = max_pool2d(activation_post_process_7, [2, 2], [2, 2])
activation_post_process_1 = activation_post_process_1(max_pool2d)
flatten = flatten.using_ints(activation_post_process_1, 1)
activation_post_process_2 = activation_post_process_1(flatten)
linear = linear(activation_post_process_2, activation_post_process_8, activation_post_process_9)
activation_post_process_3 = activation_post_process_2(linear)
return [activation_post_process_3]""",
        )
