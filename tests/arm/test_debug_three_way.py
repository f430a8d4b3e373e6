"""The numeric debugger on a real ARM-lowered program: float <-> reference <-> NEON ops. A
kernel given a wrong input zero point shows only in the reference~lowered column."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from digits import digits_data, trained_digits_cnn
from torch.fx import GraphModule

from pt2q.debugger import debug_numerics, generate_numeric_debug_handle
from pt2q.lowering.arm import lower_pt2e_quantized_to_arm
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizers import XNNPACKQuantizer, get_symmetric_quantization_config


@pytest.fixture(scope="module")
def stages() -> tuple[torch.export.ExportedProgram, GraphModule, GraphModule, list[torch.Tensor]]:
    x_train, _, x_test, _ = digits_data()
    ep = torch.export.export(trained_digits_cnn(), (x_test[:64],))
    generate_numeric_debug_handle(ep)
    q = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(ep.module(), q)
    for i in range(0, 256, 64):
        prepared(x_train[i : i + 64])
    reference = convert_pt2e(prepared)
    lowered = lower_pt2e_quantized_to_arm(reference, (x_test[:64],))
    return ep, reference, lowered, [x_test[:64], x_test[64:128]]


def _with_wrong_conv_input_zero_point(lowered: GraphModule, index: int) -> GraphModule:
    """The ``index``-th NEON conv told its input zero point is 20 more than it is."""
    bad = copy.deepcopy(lowered)
    convs = [n for n in bad.graph.nodes if n.target == torch.ops.pt2q_arm.conv2d.default]
    # conv2d(x, packed, n, kernel, stride, padding, dilation, groups, in_zp, ...)
    args = list(convs[index].args)
    args[8] = args[8] + 20
    convs[index].args = tuple(args)
    bad.recompile()
    return bad


def test_correct_kernels_agree_with_the_reference(stages) -> None:
    ep, reference, lowered, xs = stages
    report = debug_numerics(ep, reference, xs, lowered=lowered, isolated=False)
    compared = [r for r in report.rows if not math.isnan(r.value("quant~lowered", "sqnr"))]
    assert len(compared) >= 5  # conv x3 (+relu), linear x2 carry their float op's handle
    assert min(r.value("quant~lowered", "sqnr") for r in compared) > 30.0


def test_wrong_kernel_zero_point_shows_only_in_reference_lowered_column(stages) -> None:
    ep, reference, lowered, xs = stages
    report = debug_numerics(
        ep, reference, xs, lowered=_with_wrong_conv_input_zero_point(lowered, 1), isolated=False
    )
    rows = [r for r in report.rows if not math.isnan(r.value("quant~lowered", "sqnr"))]
    # rows are in graph order: the first bad one is the broken kernel (conv2, whose output
    # carries its fused relu's handle `relu_1`); everything upstream is still exact
    first_bad = next(r for r in rows if r.value("quant~lowered", "sqnr") < 20.0)
    assert first_bad.ref_node == "relu_1", report.to_text()
    assert first_bad.value("float~quant", "sqnr") > 30.0  # the reference program is fine there
    upstream = rows[: rows.index(first_bad)]
    assert upstream and all(r.value("quant~lowered", "sqnr") > 40.0 for r in upstream)
