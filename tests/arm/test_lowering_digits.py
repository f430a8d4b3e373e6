"""ARM lowering of the XNNPACK-quantized digits CNN: accuracy, structure, export."""

from __future__ import annotations

import pytest
import torch
from digits import accuracy, digits_data, trained_digits_cnn
from torch.fx import GraphModule

import pt2q.lowering
from pt2q.lowering.arm import lower_pt2e_quantized_to_arm, lowering_report
from pt2q.qdq import LoweringReport, LoweringStatus
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizers import XNNPACKQuantizer, get_symmetric_quantization_config

aten = torch.ops.aten


@pytest.fixture(scope="module")
def programs() -> tuple[GraphModule, GraphModule]:
    """(reference program, lowered program) of the per-channel XNNPACK-quantized CNN."""
    x_train, _, x_test, _ = digits_data()
    model = trained_digits_cnn()
    batch = torch.export.Dim("batch", min=2, max=4096)
    gm = torch.export.export(model, (x_test[:8],), dynamic_shapes=({0: batch},)).module()
    q = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(gm, q)
    prepared(x_train[:256])  # calibration
    reference = convert_pt2e(prepared)
    return reference, lower_pt2e_quantized_to_arm(reference, (x_test[:8],))


def test_accuracy_within_0_3_points_of_reference(programs) -> None:
    reference, lowered = programs
    _, _, x_test, y_test = digits_data()
    ref_acc, arm_acc = accuracy(reference, x_test, y_test), accuracy(lowered, x_test, y_test)
    assert abs(ref_acc - arm_acc) <= 0.3, f"reference {ref_acc:.2f}% vs ARM {arm_acc:.2f}%"


def test_no_float_conv_or_linear_left(programs) -> None:
    _, lowered = programs
    targets = [n.target for n in lowered.graph.nodes if n.op == "call_function"]
    assert aten.conv2d.default not in targets and aten.linear.default not in targets
    arm = torch.ops.pt2q_arm
    assert targets.count(arm.conv2d.default) == 3
    assert targets.count(arm.linear.default) == 2
    assert targets.count(arm.max_pool2d.default) == 1
    assert targets.count(arm.avg_pool2d.default) == 1, str(lowering_report(lowered))


def test_report_says_what_was_lowered(programs) -> None:
    _, lowered = programs
    report = lowering_report(lowered)
    anchors = {d.op: d for d in report.lowered if "aten" in d.op}
    assert {"aten.conv2d.default", "aten.linear.default", "aten.max_pool2d.default"} <= set(anchors)
    assert anchors["aten.conv2d.default"].kernel.startswith("qs8-gemm/")
    # flatten has no ARM pattern: it runs in float between its q/dq, which are lowered alone
    assert [(d.node, d.status) for d in report.not_lowered] == [("flatten", LoweringStatus.FLOAT)]
    assert "no ARM pattern takes aten.flatten.using_ints" in report.not_lowered[0].reason
    assert report.with_status(LoweringStatus.REFERENCE) == []
    fused = {d.node: d.kernel for d in report.with_status(LoweringStatus.FUSED)}
    assert fused["relu"] == "conv2d"  # a post-op names the anchor whose kernel absorbed it
    assert "lowered" in str(report)


def test_one_report_for_every_backend(programs) -> None:
    reference, lowered = programs
    assert isinstance(pt2q.lowering.lowering_report(lowered), LoweringReport)
    assert pt2q.lowering.lowering_report(lowered) is lowering_report(lowered)
    with pytest.raises(TypeError, match="without a lowering report"):
        pt2q.lowering.lowering_report(reference)


def test_exported_program_accepted_and_input_untouched(programs) -> None:
    reference, lowered = programs
    _, _, x_test, _ = digits_data()
    before = str(reference.graph)
    ep = torch.export.export(reference, (x_test[:8],))
    again = lower_pt2e_quantized_to_arm(ep, (x_test[:8],))
    assert isinstance(again, GraphModule) and str(reference.graph) == before
    assert lowering_report(again).kernel_counts() == lowering_report(lowered).kernel_counts()
    torch.testing.assert_close(again(x_test[:8]), lowered(x_test[:8]), rtol=0, atol=0)


def test_lowered_program_survives_export(programs) -> None:
    _, lowered = programs
    _, _, x_test, _ = digits_data()
    ep = torch.export.export(lowered, (x_test[:8],))
    ops = {n.target for n in ep.graph.nodes if n.op == "call_function"}
    assert torch.ops.pt2q_arm.conv2d.default in ops
    torch.testing.assert_close(ep.module()(x_test[:8]), lowered(x_test[:8]), rtol=0, atol=0)


def test_not_a_graph_module_is_rejected() -> None:
    with pytest.raises(TypeError, match="must be the GraphModule from convert_pt2e .or an"):
        lower_pt2e_quantized_to_arm(torch.nn.Linear(2, 2), (torch.zeros(1, 2),))  # type: ignore[arg-type]
