"""x86 transform_for_annotation (eval dropout removal) and the coverage reasons for attention
ops Inductor cannot run in int8 (SDPA, bmm, matmul not opted in)."""

from __future__ import annotations

import expecttest
import torch
from helpers import count_qdq, describe, export
from models import AttentionScores
from torch import nn

from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizers import (
    X86InductorQuantizer,
    XNNPACKQuantizer,
    coverage,
    get_default_x86_inductor_quantization_config,
    get_symmetric_quantization_config,
)

aten = torch.ops.aten
NO_BMM = "X86InductorQuantizer: Inductor x86 (torch 2.13) has no int8 bmm/matmul fusion"


def x86() -> X86InductorQuantizer:
    # torchao's static linears: these goldens are its annotations (token_linears.py: the default)
    q = X86InductorQuantizer().set_token_dynamic_linears(False)
    return q.set_global(get_default_x86_inductor_quantization_config())


class LinearDropoutAdd(nn.Module):
    """BERT's output block: dense -> dropout -> add(residual)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.drop = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.drop(self.fc(x)) + x)


class NativeDropout(nn.Module):
    def __init__(self, keep_mask: bool) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.keep_mask = keep_mask

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out, mask = torch.ops.aten.native_dropout(self.fc(x), 0.1, False)
        return (out + x, mask) if self.keep_mask else (out + x,)


class Attention(nn.Module):
    """q/k/v projections -> SDPA, and a bmm of the projections."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(16, 48)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        att = nn.functional.scaled_dot_product_attention(q, k, v)
        return att, torch.bmm(q, k.transpose(1, 2))


def _targets(gm: torch.fx.GraphModule) -> list[str]:
    return [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]


class TestEvalDropout(expecttest.TestCase):
    def test_linear_dropout_add_relu_fuses(self) -> None:
        torch.manual_seed(0)
        q = x86()
        gm = q.transform_for_annotation(export(LinearDropoutAdd(), torch.randn(2, 4, 16)))
        q.annotate(gm)
        self.assertExpectedInline(
            describe(gm),
            """\
linear: in(x=u8, fc_weight=i8c0) out=-
add: in() out=-
relu: in() out=-""",
        )
        entries = {e.node: e.fused_into for e in coverage(gm).entries}
        assert entries == {"linear": None, "add": "linear"}
        assert "aten.dropout.default" not in _targets(gm)

    def test_qdq_counts(self) -> None:
        torch.manual_seed(0)
        model = LinearDropoutAdd().eval()
        x = torch.randn(2, 4, 16)
        prepared = prepare_pt2e(export(model, x), x86())
        prepared(x)
        converted = convert_pt2e(prepared)
        # x quantized once for the linear; the add's residual stays float (qlinear binary)
        assert count_qdq(converted) == {
            "dequantize_per_channel.default": 1,
            "dequantize_per_tensor.default": 1,
            "quantize_per_tensor.default": 1,
        }
        cos = nn.functional.cosine_similarity(converted(x).flatten(), model(x).flatten(), dim=0)
        assert cos > 0.99, cos

    def test_train_mode_dropout_is_kept(self) -> None:
        x = torch.randn(2, 16)
        gm = torch.export.export(LinearDropoutAdd().train(), (x,)).module()
        for q in (x86(), XNNPACKQuantizer().set_global(get_symmetric_quantization_config())):
            q.transform_for_annotation(gm)
            (drop,) = [n for n in gm.graph.nodes if n.target == aten.dropout.default]
            assert drop.args[1:] == (0.1, True)

    def test_xnnpack_removes_eval_dropout(self) -> None:
        gm = export(LinearDropoutAdd(), torch.randn(2, 16))
        XNNPACKQuantizer().set_global(get_symmetric_quantization_config()).transform_for_annotation(
            gm
        )
        assert "aten.dropout.default" not in _targets(gm)

    def test_native_dropout_eval(self) -> None:
        x = torch.randn(2, 8)
        gm = x86().transform_for_annotation(export(NativeDropout(keep_mask=False), x))
        assert "aten.native_dropout.default" not in _targets(gm)
        (add,) = [n for n in gm.graph.nodes if n.target == aten.add.Tensor]
        assert add.args[0].target == aten.linear.default
        # the mask is an output: the node stays for it, the value bypasses it
        model = NativeDropout(keep_mask=True)
        gm = x86().transform_for_annotation(export(model, x))
        assert "aten.native_dropout.default" in _targets(gm)
        (add,) = [n for n in gm.graph.nodes if n.target == aten.add.Tensor]
        assert add.args[0].target == aten.linear.default
        out, mask = gm(x)
        torch.testing.assert_close(out, model(x)[0], rtol=0, atol=0)
        assert bool(mask.all())


def test_sdpa_and_bmm_reasons() -> None:
    gm = export(Attention(), torch.randn(2, 4, 16))
    x86().annotate(gm)
    report = coverage(gm)
    assert report.float_reasons == {
        "scaled_dot_product_attention": "X86InductorQuantizer: Inductor x86 (torch 2.13) has no "
        "int8 scaled_dot_product_attention fusion: SDPA stays float",
        "bmm": f"{NO_BMM}: bmm stays float",
    }
    assert report.quantized == ["linear"]


def test_matmul_not_opted_in_reason() -> None:
    gm = export(AttentionScores(), torch.randn(2, 4, 16))
    x86().annotate(gm)
    assert coverage(gm).float_reasons == {
        "matmul": f"{NO_BMM}: matmul stays float unless opted in with "
        "set_function_type_qconfig(torch.matmul, config)"
    }
    # an explicit None rule gives the rule, not the backend reason
    gm = export(AttentionScores(), torch.randn(2, 4, 16))
    x86().set_function_type_qconfig(torch.matmul, None).annotate(gm)
    assert coverage(gm).float_reasons["matmul"] == (
        "config is None (function/operator type aten.matmul.default)"
    )
