"""XNNPACKQuantizer: a static per-channel linear whose int8 output only float ops read (attention
projections, FFN linears of a transformer) gets a per-token dynamic input and a float output
(``annotators/float_read_linears.py``); linears read by int8 ops, by the graph's output, fused
with a post-op, with per-tensor weights or under QAT keep torchao's static form, as does every
linear with ``set_float_read_linear_dynamic(False)``."""

from __future__ import annotations

import torch
from helpers import calibrated_convert, op_counts
from torch import nn

from pt2q.algorithms.batches import output_sqnr
from pt2q.quantize_pt2e import prepare_pt2e, prepare_qat_pt2e
from pt2q.quantizers import XNNPACKQuantizer, coverage, get_symmetric_quantization_config

qd = torch.ops.quantized_decomposed
aten = torch.ops.aten
DYNAMIC = "per-token dynamic input, float output"


class Encoder(nn.Module):
    """Post-LN attention + FFN (single head); channel 3 of the FFN output is a 40x outlier."""

    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(16, 16) for _ in range(4))
        self.up, self.down = nn.Linear(16, 48), nn.Linear(48, 16)
        self.ln1, self.ln2 = nn.LayerNorm(16), nn.LayerNorm(16)
        with torch.no_grad():
            self.down.bias[3] = 40.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, 16)
        scores = self.q(x) @ self.k(x).transpose(-1, -2) / 4.0
        h = self.ln1(x + self.o(scores.softmax(-1) @ self.v(x)))
        return self.ln2(h + self.down(nn.functional.gelu(self.up(h))))


def _xnnpack(dynamic: bool = True, per_channel: bool = True) -> XNNPACKQuantizer:
    q = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=per_channel))
    return q.set_float_read_linear_dynamic(dynamic)


def _data() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(2, 6, 16, generator=g) for _ in range(4)]


def _converted(model: nn.Module, quantizer: XNNPACKQuantizer) -> torch.fx.GraphModule:
    return calibrated_convert(model, quantizer, _data())


def test_transformer_linears_turn_dynamic_and_gain_accuracy() -> None:
    torch.manual_seed(0)
    model = Encoder().eval()
    gm = torch.export.export(model, (_data()[0],)).module()
    report = coverage(prepare_pt2e(gm, _xnnpack()))
    linears = report.for_op(aten.linear.default)
    assert len(linears) == 6 and all(e.quantized and DYNAMIC in (e.note or "") for e in linears)
    assert "set_float_read_linear_dynamic(False) keeps it static" in str(report)

    dynamic, static = _converted(model, _xnnpack()), _converted(model, _xnnpack(dynamic=False))
    ops = op_counts(dynamic)
    per_token = "quantized_decomposed.choose_qparams_per_token_asymmetric.default"
    # one dynamic quantization per input (q, k, v share x's), one dequantize per linear; nothing
    # static left (adds and matmuls stay float)
    assert ops[per_token] == ops["quantized_decomposed.quantize_per_token.default"] == 4
    assert ops["quantized_decomposed.dequantize_per_token.default"] == 6
    assert ops["quantized_decomposed.quantize_per_tensor.default"] == 0
    assert ops["quantized_decomposed.dequantize_per_channel.default"] == 6
    for node in dynamic.graph.find_nodes(op="call_function", target=aten.linear.default):
        assert node.args[0].target == qd.dequantize_per_token.default  # type: ignore[union-attr]
        assert all(u.target != qd.quantize_per_tensor.default for u in node.users)
    # torchao's form: static int8 inputs and outputs (q, k, v, o, up and down each observed)
    assert op_counts(static)[per_token] == 0
    assert op_counts(static)["quantized_decomposed.quantize_per_tensor.default"] >= 6

    x = _data()[-1]
    with torch.no_grad():
        ref = model(x)
        sqnr_dynamic = output_sqnr([ref], [dynamic(x)])
        sqnr_static = output_sqnr([ref], [static(x)])
    print(f"output SQNR static {sqnr_static:.1f} dB, dynamic {sqnr_dynamic:.1f} dB")
    assert sqnr_dynamic >= sqnr_static + 6.0


class _Mixed(nn.Module):
    """fc1 -> relu (fused post-op); fc2 read by an int8 mul; fc3 read by the graph's output."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.relu(self.fc1(x))
        return self.fc3(y * self.fc2(x)), torch.nn.functional.gelu(y)


def test_linears_with_int8_or_graph_readers_stay_static() -> None:
    x = _data()[0]
    gm = torch.export.export(_Mixed().eval(), (x,)).module()
    report = coverage(prepare_pt2e(gm, _xnnpack()))
    linears = report.for_op(aten.linear.default)
    assert [e.quantized for e in linears] == [True, True, True]
    assert [e.note for e in linears] == [None, None, None]
    converted = _converted(_Mixed().eval(), _xnnpack())
    assert (
        op_counts(converted)["quantized_decomposed.choose_qparams_per_token_asymmetric.default"]
        == 0
    )


def test_per_tensor_weights_and_qat_keep_static_linears() -> None:
    x = _data()[0]
    # XNNPACK has no dynamic GEMM with per-tensor weights
    gm = torch.export.export(Encoder().eval(), (x,)).module()
    per_tensor = coverage(prepare_pt2e(gm, _xnnpack(per_channel=False)))
    assert all(e.note is None for e in per_tensor.for_op(aten.linear.default))
    # QAT trains the static int8 outputs it will deploy
    qat_config = get_symmetric_quantization_config(is_per_channel=True, is_qat=True)
    gm = torch.export.export(Encoder().train(), (x,)).module()
    qat = coverage(prepare_qat_pt2e(gm, XNNPACKQuantizer().set_global(qat_config)))
    linears = qat.for_op(aten.linear.default)
    assert len(linears) == 6 and all(e.quantized and e.note is None for e in linears)


def test_opt_out_argument_checked() -> None:
    try:
        XNNPACKQuantizer().set_float_read_linear_dynamic(1)  # type: ignore[arg-type]
    except TypeError as err:
        assert "set_float_read_linear_dynamic: expected a bool, found 1" in str(err)
    else:
        raise AssertionError("expected a TypeError")
