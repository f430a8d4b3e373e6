"""A third backend added from outside pt2q (``tests/lowering/toy_backend.py``): quantizer, pattern
table on the pt2q.qdq engine, Python kernels; read back with pt2q.lowering.lowering_report."""

from __future__ import annotations

import pytest
import torch
from torch.fx import GraphModule
from toy_backend import lower_to_toy, toy_quantizer

import pt2q.lowering
from pt2q.debugger import generate_numeric_debug_handle
from pt2q.qdq import LoweringStatus
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.tolerances import LOWERED_VS_REFERENCE_STEPS


class _Mlp(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(12, 16), torch.nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)).flatten(1))


@pytest.fixture(scope="module")
def programs() -> tuple[GraphModule, GraphModule, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(6, 12)
    ep = torch.export.export(_Mlp().eval(), (x,))
    generate_numeric_debug_handle(ep)
    prepared = prepare_pt2e(ep.module(), toy_quantizer())
    prepared(x)
    reference = convert_pt2e(prepared)
    before = str(reference.graph)
    lowered = lower_to_toy(reference, (x,))
    assert str(reference.graph) == before  # the input program is not touched
    return reference, lowered, x


def test_linears_run_on_the_toy_kernel(programs) -> None:
    _, lowered, _ = programs
    targets = [n.target for n in lowered.graph.nodes if n.op == "call_function"]
    assert targets.count(torch.ops.pt2q_toy.qlinear.default) == 2
    assert torch.ops.aten.linear.default not in targets


def test_output_within_one_step_of_the_reference(programs) -> None:
    reference, lowered, x = programs
    out_q = next(n for n in reversed(reference.graph.nodes) if "dequantize" in str(n.target))
    step = float(out_q.args[1])  # the output dequantize's scale
    diff = (lowered(x) - reference(x)).abs().max().item()
    assert diff <= LOWERED_VS_REFERENCE_STEPS * step * 1.0001, (diff, step)


def test_report_is_the_common_record(programs) -> None:
    _, lowered, _ = programs
    report = pt2q.lowering.lowering_report(lowered)
    assert report.backend == "toy"
    assert report.kernel_counts() == {"toy.qlinear": 2}
    by_node = report.by_node()
    assert by_node["relu"].status is LoweringStatus.FUSED and by_node["relu"].kernel == "linear"
    assert by_node["flatten"].status is LoweringStatus.FLOAT
    assert "linear only" in by_node["flatten"].reason
    lowered_handles = [d.handle for d in report.lowered]
    assert all(isinstance(h, int) for h in lowered_handles)  # joinable with the debugger
