"""X86InductorQuantizer: under a static PTQ config, a linear with no fused activation gets a
per-token dynamic input (``annotators/token_linears.py``); a linear fused with relu / gelu keeps
its static input (oneDNN applies the activation inside the int8 GEMM), as does every linear
under QAT or with ``set_token_dynamic_linears(False)``."""

from __future__ import annotations

import torch
from helpers import calibrated_convert, op_counts
from torch import nn

from pt2q.algorithms.batches import output_sqnr
from pt2q.quantize_pt2e import prepare_pt2e, prepare_qat_pt2e
from pt2q.quantizers import (
    X86InductorQuantizer,
    coverage,
    get_default_x86_inductor_quantization_config,
)

qd = torch.ops.quantized_decomposed
aten = torch.ops.aten
NOTE = "per-token dynamic input"


class Block(nn.Module):
    """Pre-LN attention + FFN (single head); token 0 carries a 30x outlier in every channel, the
    shape of the rows a per-tensor scale is set by."""

    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(16, 16) for _ in range(4))
        self.up, self.down = nn.Linear(16, 48), nn.Linear(48, 16)
        self.ln1, self.ln2 = nn.LayerNorm(16), nn.LayerNorm(16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, 16)
        h = self.ln1(x)
        scores = self.q(h) @ self.k(h).transpose(-1, -2) / 4.0
        a = self.o(scores.softmax(-1) @ self.v(h))
        return a + self.down(nn.functional.gelu(self.up(self.ln2(x + a))))  # the branches


def _x86(token_dynamic: bool = True) -> X86InductorQuantizer:
    q = X86InductorQuantizer().set_token_dynamic_linears(token_dynamic)
    return q.set_global(get_default_x86_inductor_quantization_config())


def _data() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(2, 8, 16, generator=g) for _ in range(4)]
    for b in batches:
        b[:, 0] *= 30.0
    return batches


def _converted(model: nn.Module, quantizer: X86InductorQuantizer) -> torch.fx.GraphModule:
    return calibrated_convert(model, quantizer, _data())


def test_linears_without_fused_activation_turn_per_token_and_gain_accuracy() -> None:
    torch.manual_seed(0)
    model = Block().eval()
    gm = torch.export.export(model, (_data()[0],)).module()
    report = coverage(prepare_pt2e(gm, _x86()))
    notes = {e.node: e.note for e in report.for_op(aten.linear.default)}
    assert all(e.quantized for e in report.for_op(aten.linear.default))
    # up is fused with gelu: static; q, k, v, o and down: per-token
    assert notes["linear_4"] is None
    assert [n for n, note in notes.items() if NOTE in (note or "")] == [
        "linear", "linear_1", "linear_2", "linear_3", "linear_5"
    ]  # fmt: skip
    assert "set_token_dynamic_linears(False) keeps it static" in str(report)

    token, static = _converted(model, _x86()), _converted(model, _x86(token_dynamic=False))
    ops = op_counts(token)
    per_token = "quantized_decomposed.choose_qparams_per_token_asymmetric.default"
    # q, k, v share ln1's tokens: 3 dynamic quantizations (h, the context, the gelu output)
    assert ops[per_token] == ops["quantized_decomposed.quantize_per_token.default"] == 3
    assert ops["quantized_decomposed.dequantize_per_token.default"] == 5
    assert ops["quantized_decomposed.quantize_per_tensor.default"] == 1  # up's input: static
    up = next(n for n in token.graph.nodes if n.name == "linear_4")
    assert up.args[0].target == qd.dequantize_per_tensor.default
    assert op_counts(static)[per_token] == 0

    x = _data()[-1]
    with torch.no_grad():
        ref = model(x)
        sqnr_token = output_sqnr([ref], [token(x)])
        sqnr_static = output_sqnr([ref], [static(x)])
    print(f"output SQNR static {sqnr_static:.1f} dB, per-token {sqnr_token:.1f} dB")
    assert sqnr_token >= sqnr_static + 1.0  # measured: 39.7 -> 41.1 dB


def test_qat_and_opt_out_keep_static_linears() -> None:
    x = _data()[0]
    gm = torch.export.export(Block().eval(), (x,)).module()
    off = coverage(prepare_pt2e(gm, _x86(token_dynamic=False)))
    assert all(e.quantized and e.note is None for e in off.for_op(aten.linear.default))
    qat_config = get_default_x86_inductor_quantization_config(is_qat=True)
    gm = torch.export.export(Block().train(), (x,)).module()
    qat = coverage(prepare_qat_pt2e(gm, X86InductorQuantizer().set_global(qat_config)))
    linears = qat.for_op(aten.linear.default)
    assert len(linears) == 6 and all(e.quantized and e.note is None for e in linears)


def test_opt_out_argument_checked() -> None:
    try:
        X86InductorQuantizer().set_token_dynamic_linears("no")  # type: ignore[arg-type]
    except TypeError as err:
        assert "set_token_dynamic_linears: expected a bool, found 'no'" in str(err)
    else:
        raise AssertionError("no TypeError")


class _Int8Chains(nn.Module):
    """A CNN head (conv -> relu -> pool -> flatten -> fc) and a ReLU MLP (fc1 -> relu -> fc2)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8, 16)
        self.fc1, self.fc2 = nn.Linear(16, 16), nn.Linear(16, 4)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(torch.relu(self.conv(img)), 1).flatten(1)
        h = self.fc(pooled)
        return self.fc2(torch.relu(self.fc1(h)))


def test_linears_behind_a_uint8_chain_stay_static() -> None:
    """fc reads the conv's uint8 output through pool / flatten, fc2 reads fc1 + relu's: both keep
    the chain (static); fc1 reads fc's float output (no activation fused into fc, but fc ends a
    linear pattern: its output can be uint8) and stays static too."""
    img = torch.randn(2, 3, 8, 8)
    report = coverage(
        prepare_pt2e(torch.export.export(_Int8Chains().eval(), (img,)).module(), _x86())
    )
    linears = report.for_op(aten.linear.default)
    assert len(linears) == 3 and all(e.quantized and e.note is None for e in linears)
