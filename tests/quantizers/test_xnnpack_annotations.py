"""XNNPACKQuantizer annotations, node for node (no prepare/convert needed)."""

from __future__ import annotations

import expecttest
import pytest
import torch
from helpers import describe, export
from models import ConvAddRelu, ConvPoolCat, ConvTransposeRelu, Linear3d, LinearReluAdd
from torch import nn

from pt2q.quantizers import XNNPACKQuantizer, coverage, get_symmetric_quantization_config


def xnn(**kw: bool) -> XNNPACKQuantizer:
    return XNNPACKQuantizer().set_global(get_symmetric_quantization_config(**kw))


def annotated(model: nn.Module, *args: torch.Tensor, **kw: bool) -> str:
    torch.manual_seed(0)
    gm = export(model, *args)
    xnn(**kw).annotate(gm)
    return describe(gm)


def test_config_ranges() -> None:
    cfg = get_symmetric_quantization_config(is_per_channel=True)
    assert (cfg.input_activation.dtype, cfg.input_activation.quant_min) == (torch.int8, -128)
    assert (cfg.weight.quant_min, cfg.weight.quant_max, cfg.weight.ch_axis) == (-127, 127, 0)
    assert cfg.weight.qscheme == torch.per_channel_symmetric
    assert get_symmetric_quantization_config().weight.qscheme == torch.per_tensor_symmetric
    assert get_symmetric_quantization_config(is_dynamic=True).output_activation is None


class TestXNNPACKGolden(expecttest.TestCase):
    def test_conv_add_relu(self) -> None:
        self.assertExpectedInline(
            annotated(ConvAddRelu(), torch.randn(1, 8, 6, 6)),
            """\
conv2d: in(x=i8, conv_weight=i8) out=i8
add: in(conv2d=i8, x=i8) out=-
relu: in() out=i8""",
        )

    def test_linear_relu_add(self) -> None:
        self.assertExpectedInline(
            annotated(LinearReluAdd(), torch.randn(2, 16)),
            """\
linear: in(x=i8, fc_weight=i8) out=-
relu: in() out=i8
add: in(relu=i8, x=i8) out=i8""",
        )

    def test_pools_cat_per_channel(self) -> None:
        self.assertExpectedInline(
            annotated(ConvPoolCat(), torch.randn(1, 3, 8, 8), is_per_channel=True),
            """\
conv2d: in(x=i8, conv1_weight=i8c0) out=-
relu: in() out=i8
max_pool2d: in(relu==relu) out==relu
conv2d_1: in(max_pool2d=i8, conv2_weight=i8c0) out=i8
conv2d_2: in(max_pool2d=i8, conv3_weight=i8c0) out=i8
cat: in(conv2d_1=i8, conv2d_2==conv2d_1->cat) out==conv2d_1->cat
adaptive_avg_pool2d: in(cat=i8) out==cat->adaptive_avg_pool2d
flatten: in(adaptive_avg_pool2d==adaptive_avg_pool2d) out==adaptive_avg_pool2d
linear: in(flatten=i8, fc_weight=i8c0) out=i8""",
        )

    def test_conv_transpose_per_channel_axis_1(self) -> None:
        self.assertExpectedInline(
            annotated(ConvTransposeRelu(), torch.randn(1, 4, 3, 3), is_per_channel=True),
            """\
conv_transpose2d: in(x=i8, deconv_weight=i8c1) out=-
relu: in() out=i8""",
        )


@pytest.mark.parametrize(
    "groups, expected",
    [
        pytest.param(1, "conv2d: in(x=i8dyn, conv_weight=i8) out=-", id="regular_conv"),
        pytest.param(4, "", id="depthwise_left_float"),
    ],
)
def test_dynamic_conv2d(groups: int, expected: str) -> None:
    class Conv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, groups=groups)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.conv(x))

    gm = export(Conv(), torch.randn(1, 4, 6, 6))
    if groups == 1:
        xnn(is_dynamic=True).annotate(gm)
    else:
        with pytest.warns(UserWarning, match="grouped conv"):
            xnn(is_dynamic=True).annotate(gm)
    assert describe(gm) == expected


def test_dynamic_linear_3d() -> None:
    text = annotated(Linear3d(), torch.randn(2, 5, 16), is_dynamic=True, is_per_channel=True)
    assert text == "linear: in(x=i8dyn, fc_weight=i8c0) out=-"


def test_scalar_operand_of_mul_stays_float() -> None:
    class ScaleAdd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.fc(x)
            return y * 0.5 + y

    gm = export(ScaleAdd(), torch.randn(2, 8))
    xnn().annotate(gm)
    assert describe(gm).splitlines()[1:] == [
        "mul: in(linear=i8) out=i8",
        "add: in(mul=i8, linear=i8) out=i8",
    ]
    assert coverage(gm).float_reasons == {}
