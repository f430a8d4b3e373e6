"""X86InductorQuantizer annotations, node for node (no prepare/convert needed)."""

from __future__ import annotations

import expecttest
import pytest
import torch
from helpers import describe, export
from models import (
    AttentionScores,
    Conv1dOnly,
    ConvAddRelu,
    ConvPoolCat,
    ConvSame,
    ConvUnary,
    Linear3d,
    LinearReluAdd,
    ReusedReluBlock,
)
from torch import nn

from pt2q.quantizers import (
    NothingQuantizedError,
    NothingQuantizedWarning,
    X86InductorQuantizer,
    coverage,
    get_default_x86_inductor_quantization_config,
)


def x86() -> X86InductorQuantizer:
    # torchao's static linears: these goldens are its annotations (token_linears.py: the default)
    q = X86InductorQuantizer().set_token_dynamic_linears(False)
    return q.set_global(get_default_x86_inductor_quantization_config())


def annotated(model: nn.Module, *args: torch.Tensor, q: X86InductorQuantizer | None = None) -> str:
    torch.manual_seed(0)
    gm = export(model, *args)
    (q or x86()).annotate(gm)
    return describe(gm)


@pytest.mark.parametrize(
    "unary, op",
    [
        pytest.param(nn.ReLU(), "relu", id="relu"),
        pytest.param(nn.Hardtanh(), "hardtanh", id="hardtanh"),
        pytest.param(nn.ReLU6(), "hardtanh", id="relu6_exports_as_hardtanh"),
        pytest.param(nn.Hardswish(), "hardswish", id="hardswish"),
        pytest.param(nn.SiLU(), "silu", id="silu"),
    ],
)
def test_conv_unary_post_op_is_fused(unary: nn.Module, op: str) -> None:
    text = annotated(ConvUnary(unary), torch.randn(1, 3, 8, 8))
    assert text == f"conv2d: in(x=u8, conv_weight=i8c0) out=-\n{op}: in() out=-"


def test_conv_unary_not_fusable_stays_float() -> None:
    gm = export(ConvUnary(nn.Tanh()), torch.randn(1, 3, 8, 8))
    x86().annotate(gm)
    assert describe(gm) == "conv2d: in(x=u8, conv_weight=i8c0) out=-"


class TestX86Golden(expecttest.TestCase):
    def test_conv_add_relu(self) -> None:
        self.assertExpectedInline(
            annotated(ConvAddRelu(), torch.randn(1, 8, 6, 6)),
            """\
conv2d: in(x=u8, conv_weight=i8c0) out=-
add: in(x=u8) out=-
relu: in() out=-""",
        )

    def test_reused_relu_module_resnet_block(self) -> None:
        # prepare folds BN first; annotate the folded graph like prepare does.
        from pt2q.passes.fold_bn import fold_bn_into_preceding_op

        torch.manual_seed(0)
        gm = export(ReusedReluBlock(), torch.randn(1, 8, 6, 6))
        fold_bn_into_preceding_op(gm)
        x86().annotate(gm)
        self.assertExpectedInline(
            describe(gm),
            """\
conv2d: in(x=u8, conv1_weight_bn_folded=i8c0) out=-
relu_: in() out=-
conv2d_1: in(relu_=u8, conv2_weight_bn_folded=i8c0) out=-
add: in(x=u8) out=-
relu__1: in() out=-""",
        )

    def test_linear_relu_add_fuses_relu_leaves_add_float(self) -> None:
        gm = export(LinearReluAdd(), torch.randn(2, 16))
        x86().annotate(gm)
        self.assertExpectedInline(
            describe(gm),
            """\
linear: in(x=u8, fc_weight=i8c0) out=-
relu: in() out=-""",
        )
        reason = coverage(gm).float_reasons["add"]
        assert reason.startswith("unfusable post-op order linear -> relu -> add"), reason

    def test_pools_cat_flatten_propagate_int8(self) -> None:
        self.assertExpectedInline(
            annotated(ConvPoolCat(), torch.randn(1, 3, 8, 8)),
            """\
conv2d: in(x=u8, conv1_weight=i8c0) out=-
relu: in() out=-
max_pool2d: in(relu=u8) out==relu->max_pool2d
conv2d_1: in(max_pool2d=u8, conv2_weight=i8c0) out=-
conv2d_2: in(max_pool2d=u8, conv3_weight=i8c0) out=-
cat: in(conv2d_1=u8, conv2d_2==conv2d_1->cat) out==conv2d_1->cat
adaptive_avg_pool2d: in(cat=u8) out==cat->adaptive_avg_pool2d
flatten: in(adaptive_avg_pool2d=u8) out==adaptive_avg_pool2d->flatten
linear: in(flatten=u8, fc_weight=i8c0) out=-""",
        )

    def test_matmul_is_opt_in(self) -> None:
        x = torch.randn(2, 4, 16)
        default = annotated(AttentionScores(), x)
        assert "matmul" not in default
        q = x86().set_function_type_qconfig(
            torch.matmul, get_default_x86_inductor_quantization_config()
        )
        self.assertExpectedInline(
            annotated(AttentionScores(), x, q=q),
            """\
linear: in(x=u8, q_weight=i8c0) out=-
linear_1: in(x=u8, k_weight=i8c0) out=-
matmul: in(linear=u8, transpose=u8) out=-""",
        )


def test_linear_3d_input() -> None:
    assert annotated(Linear3d(), torch.randn(2, 5, 16)) == "linear: in(x=u8, fc_weight=i8c0) out=-"


def test_standalone_conv1d_is_annotated() -> None:
    assert (
        annotated(Conv1dOnly(), torch.randn(1, 4, 10)) == "conv1d: in(x=u8, conv_weight=i8c0) out=-"
    )


def test_conv_padding_same_is_annotated() -> None:
    gm = export(ConvSame(), torch.randn(1, 3, 8, 8))
    assert any(n.target == torch.ops.aten.conv2d.padding for n in gm.graph.nodes)
    x86().annotate(gm)
    assert describe(gm) == "conv2d: in(x=u8, conv_weight=i8c0) out=-\nrelu: in() out=-"


def test_reduce_range_and_dynamic_configs() -> None:
    cfg = get_default_x86_inductor_quantization_config(reduce_range=True)
    assert (cfg.input_activation.quant_min, cfg.input_activation.quant_max) == (0, 127)
    dyn = get_default_x86_inductor_quantization_config(is_dynamic=True)
    gm = export(ConvPoolCat(), torch.randn(1, 3, 8, 8))
    X86InductorQuantizer().set_global(dyn).annotate(gm)
    assert describe(gm) == "linear: in(flatten=u8dyn, fc_weight=i8c0) out=-"
    assert "no dynamic int8 conv" in coverage(gm).float_reasons["conv2d"]


def test_no_config_raises_naming_the_nodes() -> None:
    gm = export(Linear3d(), torch.randn(2, 5, 16))
    with pytest.raises(NothingQuantizedError, match=r"none of the 1 conv/linear nodes \(linear\)"):
        X86InductorQuantizer().annotate(gm)


def test_everything_filtered_warns() -> None:
    gm = export(Linear3d(), torch.randn(2, 5, 16))
    q = x86().set_module_type_qconfig(nn.Linear, None)
    with pytest.warns(NothingQuantizedWarning, match="module type torch.nn.modules.linear.Linear"):
        q.annotate(gm)


def test_mixing_static_and_dynamic_configs_raises() -> None:
    q = x86()
    dyn = get_default_x86_inductor_quantization_config(is_dynamic=True)
    with pytest.raises(ValueError, match="set_module_name_qconfig: is_dynamic=True but an earlier"):
        q.set_module_name_qconfig("fc", dyn)
