"""The llm_config schemes end to end: exact reference programs (op counts, folded integer
weights and their ranges), numerics against hand references, both quantizers and their
setters, 2-D and 3-D linears, 4-bit embeddings, and the float reasons of what cannot be
expressed."""

from __future__ import annotations

import pytest
import torch
from llm_models import (
    TwoLinears,
    export_eval,
    hand_asymmetric_groups,
    hand_per_token_qparams,
    hand_symmetric_weight,
    qd_counts,
)
from torch import nn
from torch.fx import GraphModule

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.quantizers import (
    ComposableQuantizer,
    EmbeddingQuantizer,
    X86InductorQuantizer,
    XNNPACKQuantizer,
    coverage,
    llm_config,
)

qd = torch.ops.quantized_decomposed

_DYNAMIC = {
    "choose_qparams_per_token_asymmetric": 2,
    "quantize_per_token": 2,
    "dequantize_per_token": 2,
}
EXPECTED_COUNTS = {
    "int8wo": {"dequantize_per_channel": 2},
    "int4wo": {"dequantize_per_channel_group": 2},
    "8da8w": {**_DYNAMIC, "dequantize_per_channel": 2},
    "8da4w": {**_DYNAMIC, "dequantize_per_channel_group": 2},
}
# scheme -> (weight storage dtype, qmin, qmax)
WEIGHT_RANGE = {
    "int8wo": (torch.int8, -127, 127),
    "int4wo": (torch.uint8, 0, 15),
    "8da8w": (torch.int8, -127, 127),
    "8da4w": (torch.int8, -8, 7),
}
QUANTIZERS = {"x86": X86InductorQuantizer, "xnnpack": XNNPACKQuantizer}
SHAPES = {"2d": (6, 64), "3d": (2, 5, 64)}


def _convert(model: nn.Module, quantizer: object, x: torch.Tensor) -> GraphModule:
    prepared = prepare_pt2e(export_eval(model, x), quantizer)  # type: ignore[arg-type]
    prepared(x)
    return convert_pt2e(prepared)


def _hand_weight(scheme: str, w: torch.Tensor, group: int) -> tuple[torch.Tensor, torch.Tensor]:
    _, lo, hi = WEIGHT_RANGE[scheme]
    if scheme == "int4wo":
        return hand_asymmetric_groups(w, lo, hi, group)
    return hand_symmetric_weight(w, lo, hi, group if scheme == "8da4w" else None)


def _hand_activation(scheme: str, x: torch.Tensor) -> torch.Tensor:
    if scheme in ("int8wo", "int4wo"):
        return x
    scale, zp = hand_per_token_qparams(x)
    q = torch.clamp(torch.round(x.double() * (1.0 / scale) + zp), -128, 127)
    return ((q - zp) * scale).float()


def _weight_dq_inputs(gm: GraphModule) -> list[torch.Tensor]:
    """The folded integer weight of every weight dequantize, in graph order."""
    ops = (qd.dequantize_per_channel.default, qd.dequantize_per_channel_group.default)
    return [gm.get_buffer(n.args[0].target) for n in gm.graph.nodes if n.target in ops]


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("backend", QUANTIZERS.keys())
@pytest.mark.parametrize("scheme", EXPECTED_COUNTS.keys())
def test_scheme_reference_program(scheme: str, backend: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = TwoLinears().eval()
    x = torch.randn(*shape)
    converted = _convert(model, QUANTIZERS[backend]().set_global(llm_config(scheme)), x)

    assert qd_counts(converted) == EXPECTED_COUNTS[scheme]
    dtype, lo, hi = WEIGHT_RANGE[scheme]
    folded = _weight_dq_inputs(converted)
    for w_int, lin in zip(folded, (model.up, model.down), strict=True):
        assert w_int.dtype == dtype and w_int.shape == lin.weight.shape
        assert lo <= int(w_int.min()) and int(w_int.max()) <= hi
        hand_q, _ = _hand_weight(scheme, lin.weight.detach(), 32)
        assert torch.equal(w_int.to(torch.float32), hand_q)  # exact integer weights

    with torch.no_grad():
        _, w_up = _hand_weight(scheme, model.up.weight, 32)
        _, w_down = _hand_weight(scheme, model.down.weight, 32)
        h = torch.relu(nn.functional.linear(_hand_activation(scheme, x), w_up, model.up.bias))
        expected = nn.functional.linear(_hand_activation(scheme, h), w_down)
        actual = converted(x)
    # Same integers and scales; only float association in the linear differs.
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_setters_module_name_and_type() -> None:
    model = TwoLinears().eval()
    x = torch.randn(3, 64)
    x86 = X86InductorQuantizer().set_module_name_qconfig("down", llm_config("8da4w"))
    assert qd_counts(_convert(model, x86, x)) == {
        k: v // 2 for k, v in EXPECTED_COUNTS["8da4w"].items()
    }
    xnn = XNNPACKQuantizer().set_module_type(nn.Linear, llm_config("int4wo", group_size=64))
    converted = _convert(model, xnn, x)
    # up has K = 64 = group size: one group per row is per-channel; down (K = 128) has 2 groups
    assert qd_counts(converted) == {"dequantize_per_channel": 1, "dequantize_per_channel_group": 1}
    group_dq = qd.dequantize_per_channel_group.default
    assert [n.args[6] for n in converted.graph.nodes if n.target == group_dq] == [64]
    xnn_name = XNNPACKQuantizer().set_module_name("up", llm_config("8da8w"))
    assert qd_counts(_convert(model, xnn_name, x))["dequantize_per_channel"] == 1


class _Mixed(nn.Module):
    """A conv (4-D weight) and a linear whose K (48) is not a multiple of 32, next to one that is."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.odd = nn.Linear(48, 64)
        self.ok = nn.Linear(64, 8)

    def forward(self, img: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.conv(img), self.ok(self.odd(x))


@pytest.mark.parametrize("backend", QUANTIZERS.keys())
def test_inexpressible_weights_stay_float_with_reason(backend: str) -> None:
    args = (torch.randn(1, 3, 8, 8), torch.randn(2, 48))
    gm = export_eval(_Mixed(), *args)
    quantizer = QUANTIZERS[backend]().set_global(llm_config("8da4w"))
    prepared = prepare_pt2e(gm, quantizer)
    report = coverage(prepared)
    reasons = report.float_reasons
    odd = next(k for k in reasons if "linear" in k)
    assert "cannot be quantized with PerGroup(group_size=32)" in reasons[odd]
    conv = next(k for k in reasons if "conv" in k)
    # x86 has no dynamic conv at all; XNNPACK's dynamic conv2d meets the 4-D weight check.
    assert ("dynamic" if backend == "x86" else "PerGroup(group_size=32)") in reasons[conv]
    prepared(*args)
    assert qd_counts(convert_pt2e(prepared))["dequantize_per_channel_group"] == 1


class _Embed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 64)
        self.proj = nn.Linear(64, 16)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.proj(self.emb(ids))


def test_embedding_4bit_groups_through_embedding_quantizer() -> None:
    torch.manual_seed(0)
    model = _Embed().eval()
    ids = torch.randint(0, 50, (2, 7))
    quantizer = ComposableQuantizer(
        [
            EmbeddingQuantizer(llm_config("embedding_4bit", group_size=16)),
            XNNPACKQuantizer().set_global(llm_config("8da4w", group_size=16)),
        ]
    )
    converted = _convert(model, quantizer, ids)
    assert qd_counts(converted) == {
        "choose_qparams_per_token_asymmetric": 1,
        "quantize_per_token": 1,
        "dequantize_per_token": 1,
        "dequantize_per_channel_group": 2,
    }
    table = _weight_dq_inputs(converted)[0]
    hand_q, hand_dq = hand_symmetric_weight(model.emb.weight.detach(), -8, 7, 16)
    assert table.dtype == torch.int8 and torch.equal(table.float(), hand_q)
    with torch.no_grad():
        _, w = hand_symmetric_weight(model.proj.weight, -8, 7, 16)
        emb = nn.functional.embedding(ids, hand_dq)
        expected = nn.functional.linear(_hand_activation("8da4w", emb), w, model.proj.bias)
        torch.testing.assert_close(converted(ids), expected, rtol=1e-5, atol=1e-5)


def test_reference_program_reexports() -> None:
    x = torch.randn(2, 5, 64)
    converted = _convert(TwoLinears(), XNNPACKQuantizer().set_global(llm_config("8da4w")), x)
    again = torch.export.export(converted, (x,)).module()
    torch.testing.assert_close(again(x), converted(x))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scheme": "int3wo"}, "unknown scheme 'int3wo'"),
        ({"scheme": "8da4w", "group_size": 1}, "group_size must be an int >= 2"),
    ],
    ids=["scheme", "group"],
)
def test_llm_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        llm_config(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", ["8da4w", "int4wo"])
def test_dynamic_sequence_length_prefill_and_decode(scheme: str) -> None:
    torch.manual_seed(0)
    model = TwoLinears().eval()
    x = torch.randn(2, 5, 64)
    seq = torch.export.Dim("seq", max=64)
    gm = torch.export.export(model, (x,), dynamic_shapes={"x": {1: seq}}).module()
    prepared = prepare_pt2e(gm, X86InductorQuantizer().set_global(llm_config(scheme)))
    prepared(x)
    converted = convert_pt2e(prepared)
    _, w_up = _hand_weight(scheme, model.up.weight.detach(), 32)
    _, w_down = _hand_weight(scheme, model.down.weight.detach(), 32)
    for tokens in (1, 9):  # decode step, prefill
        xt = torch.randn(2, tokens, 64)
        with torch.no_grad():
            h = torch.relu(nn.functional.linear(_hand_activation(scheme, xt), w_up, model.up.bias))
            expected = nn.functional.linear(_hand_activation(scheme, h), w_down)
            torch.testing.assert_close(converted(xt), expected, rtol=1e-5, atol=1e-5)
