"""Convert of affine specs beyond the LLM schemes: static per-tensor activations, per-axis and
float-domain group weights, dynamic per-tensor activations, and the errors / float reasons of
what the quantized_decomposed IR cannot express."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.fx import GraphModule

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.affine import (
    MappingType,
    PerAxis,
    PerBlock,
    PerGroup,
    PerTensor,
    PerToken,
    ZeroPointDomain,
    choose_qparams_affine,
    dequantize_affine,
    quantize_affine,
)
from pt2q.errors import CalibrationError
from pt2q.observer import AffineQuantizedMinMaxObserver, AffineQuantizedPlaceholderObserver
from pt2q.quantizer import QuantizationConfig, QuantizationSpec
from pt2q.quantizers import XNNPACKQuantizer, coverage

qd = torch.ops.quantized_decomposed


def _spec(dtype: torch.dtype, dynamic: bool = False, **observer: Any) -> QuantizationSpec:
    ctr = AffineQuantizedPlaceholderObserver if dynamic else AffineQuantizedMinMaxObserver
    return QuantizationSpec(
        dtype=dtype,
        observer_or_fake_quant_ctr=ctr.with_args(**observer),
        quant_min=observer.pop("quant_min", None),
        quant_max=observer.pop("quant_max", None),
        is_dynamic=dynamic,
    )


def _prepare(
    act: QuantizationSpec | None, weight: QuantizationSpec, x: torch.Tensor
) -> GraphModule:
    torch.manual_seed(0)
    model = nn.Linear(64, 16).eval()
    gm = torch.export.export(model, (x,)).module()
    out = None if act is None or act.is_dynamic else act
    quantizer = XNNPACKQuantizer().set_global(QuantizationConfig(act, out, weight, None))
    return prepare_pt2e(gm, quantizer)


def _ops(gm: GraphModule) -> list[str]:
    return [
        str(n.target).split(".")[1]
        for n in gm.graph.nodes
        if "quantized_decomposed" in str(n.target)
    ]


def test_static_per_tensor_activation_per_axis_weight() -> None:
    x = torch.randn(4, 64)
    act = _spec(torch.int8, mapping_type=MappingType.ASYMMETRIC, granularity=PerTensor())
    w = _spec(torch.int8, mapping_type=MappingType.SYMMETRIC, granularity=PerAxis(0))
    prepared = _prepare(act, w, x)
    prepared(x)
    converted = convert_pt2e(prepared)
    assert sorted(_ops(converted)) == sorted(
        ["quantize_per_tensor", "dequantize_per_tensor", "dequantize_per_channel"]
        + ["quantize_per_tensor", "dequantize_per_tensor"]  # the linear's output
    )
    q = next(n for n in converted.graph.nodes if n.target == qd.quantize_per_tensor.default)
    s, z = choose_qparams_affine(x, MappingType.ASYMMETRIC, x.shape, torch.int8)
    assert z is not None
    assert q.args[1:] == (float(s), int(z), -128, 127, torch.int8)


@pytest.mark.parametrize(
    ("granularity", "block"),
    [(PerGroup(32), (1, 32)), (PerAxis(0), (1, 64))],
    ids=["group", "axis"],
)
def test_float_zero_point_domain_weight_within_one_step(
    granularity: Any, block: tuple[int, int]
) -> None:
    x = torch.randn(4, 64)
    w = _spec(
        torch.uint8,
        mapping_type=MappingType.ASYMMETRIC,
        granularity=granularity,
        quant_min=0,
        quant_max=15,
        preserve_zero=False,
        zero_point_domain=ZeroPointDomain.FLOAT,
    )
    prepared = _prepare(None, w, x)
    prepared(x)
    weight = prepared.weight.detach()  # the nn.Linear's float weight
    converted = convert_pt2e(prepared)
    # float zero points are added before rounding only by the group op: per-axis becomes one
    # group per row
    (dq,) = [
        n for n in converted.graph.nodes if n.target == qd.dequantize_per_channel_group.default
    ]
    ir_weight = dq.target(
        *[converted.get_buffer(a.target) if hasattr(a, "target") else a for a in dq.args]
    )
    dom = ZeroPointDomain.FLOAT
    s, z = choose_qparams_affine(weight, MappingType.ASYMMETRIC, block, torch.uint8, 0, 15,
                                 preserve_zero=False, zero_point_domain=dom)  # fmt: skip
    q = quantize_affine(weight, block, s, z, torch.uint8, 0, 15, dom)
    hand = dequantize_affine(q, block, s, z, torch.uint8, 0, 15, dom)
    # the IR's round(x / s + z') differs from torchao's float-domain formula only at ties
    steps = ((ir_weight - hand).abs() / s.repeat_interleave(block[1], dim=1)).max()
    assert float(steps) <= 1.0 + 1e-4


def test_dynamic_per_tensor_activation() -> None:
    x = torch.randn(2, 5, 64)
    act = _spec(
        torch.int8, dynamic=True, mapping_type=MappingType.ASYMMETRIC, granularity=PerTensor()
    )
    w = _spec(torch.int8, mapping_type=MappingType.SYMMETRIC, granularity=PerAxis(0))
    converted = convert_pt2e(_prepare(act, w, x))
    assert _ops(converted) == [
        "choose_qparams", "quantize_per_tensor", "dequantize_per_channel", "dequantize_per_tensor",
    ]  # fmt: skip


def test_static_per_token_activation_on_3d_input_is_a_clear_error() -> None:
    x = torch.randn(2, 5, 64)
    act = _spec(torch.int8, mapping_type=MappingType.ASYMMETRIC, granularity=PerToken())
    w = _spec(torch.int8, mapping_type=MappingType.SYMMETRIC, granularity=PerAxis(0))
    prepared = _prepare(act, w, x)
    prepared(x)
    with pytest.raises(
        ValueError, match=r"affine observer .* on .*has no quantized_decomposed form"
    ):
        convert_pt2e(prepared)


def test_uncalibrated_static_affine_activation_raises() -> None:
    x = torch.randn(4, 64)
    act = _spec(torch.int8, mapping_type=MappingType.ASYMMETRIC, granularity=PerTensor())
    w = _spec(torch.int8, mapping_type=MappingType.SYMMETRIC, granularity=PerAxis(0))
    with pytest.raises(CalibrationError, match="AffineQuantizedMinMaxObserver"):
        convert_pt2e(_prepare(act, w, x))


def test_2d_block_weight_stays_float_with_reason() -> None:
    x = torch.randn(4, 64)
    w = _spec(torch.int8, mapping_type=MappingType.SYMMETRIC, granularity=PerBlock((4, 32)))
    with pytest.warns(UserWarning):
        prepared = _prepare(None, w, x)
    (reason,) = coverage(prepared).float_reasons.values()
    assert "PerBlock(block_size=(4, 32))" in reason and "no quantized_decomposed form" in reason
