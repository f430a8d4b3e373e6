"""QAT configs: conv -> batch_norm -> relu is matched with BN still in the graph."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from helpers import count_qdq, describe
from torch import nn

from pt2q.quantize_pt2e import convert_pt2e, prepare_qat_pt2e
from pt2q.quantizer import Quantizer
from pt2q.quantizers import (
    X86InductorQuantizer,
    XNNPACKQuantizer,
    get_default_x86_inductor_quantization_config,
    get_symmetric_quantization_config,
)


class ConvBnRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


def xnn_qat() -> Quantizer:
    cfg = get_symmetric_quantization_config(is_per_channel=True, is_qat=True)
    return XNNPACKQuantizer().set_global(cfg)


def x86_qat() -> Quantizer:
    return X86InductorQuantizer().set_global(
        get_default_x86_inductor_quantization_config(is_qat=True)
    )


@pytest.mark.parametrize(
    "make_quantizer, annotations, counts",
    [
        pytest.param(
            xnn_qat,
            "conv2d: in(x=i8, conv_weight=i8c0) out=-\nbatch_norm: in() out=-\nrelu: in() out=i8",
            (2, 2),
            id="xnnpack",
        ),
        pytest.param(
            x86_qat,
            "conv2d: in(x=u8, conv_weight=i8c0) out=-\nbatch_norm: in() out=-\nrelu: in() out=-",
            (1, 1),
            id="x86",
        ),
    ],
)
def test_conv_bn_relu_qat(
    make_quantizer: Callable[[], Quantizer], annotations: str, counts: tuple[int, int]
) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    gm = torch.export.export(ConvBnRelu().train(), (x,)).module()
    make_quantizer().annotate(gm)
    assert describe(gm) == annotations
    gm = torch.export.export(ConvBnRelu().train(), (x,)).module()
    prepared = prepare_qat_pt2e(gm, make_quantizer())
    prepared(x)
    n_q, n_dq = counts
    assert count_qdq(convert_pt2e(prepared)) == {
        "dequantize_per_channel.default": 1,
        "dequantize_per_tensor.default": n_dq,
        "quantize_per_tensor.default": n_q,
    }
