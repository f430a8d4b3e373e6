"""Every misuse of prepare/convert gets an error naming what is wrong."""

from __future__ import annotations

import pytest
import torch
from core_quantizer import ACT, CoreQuantizer
from test_specs_in_flow import FnQuantizer, annotate, export
from torch import nn
from torch.fx import Node

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.errors import AnnotationError, CalibrationError, NotAnExportedModelError, NotPreparedError
from pt2q.observer import NonFiniteObservationError
from pt2q.quantizer import SharedQuantizationSpec

aten = torch.ops.aten


def test_eager_module_is_rejected_with_export_hint() -> None:
    with pytest.raises(
        NotAnExportedModelError, match=r"eager module Linear.*torch\.export\.export"
    ):
        prepare_pt2e(nn.Linear(2, 2), CoreQuantizer())


def test_exported_program_is_rejected_with_module_hint() -> None:
    ep = torch.export.export(nn.Linear(2, 2), (torch.randn(1, 2),))
    with pytest.raises(NotAnExportedModelError, match=r"ExportedProgram.*\.module\(\)"):
        prepare_pt2e(ep, CoreQuantizer())  # type: ignore[arg-type]


def test_quantizer_must_be_a_quantizer() -> None:
    with pytest.raises(TypeError, match="quantizer must be a pt2q.quantizer.Quantizer"):
        prepare_pt2e(export(nn.Linear(2, 2), torch.randn(1, 2)), object())  # type: ignore[arg-type]


def test_convert_before_calibration_names_the_nodes() -> None:
    gm = prepare_pt2e(export(nn.Linear(2, 2), torch.randn(1, 2)), CoreQuantizer())
    with pytest.raises(
        CalibrationError,
        match=r"2 observer\(s\) never saw data.*observing 'input_1'.*observing 'linear'",
    ):
        convert_pt2e(gm)


def test_convert_of_unprepared_model() -> None:
    with pytest.raises(NotPreparedError, match="not prepared by pt2q"):
        convert_pt2e(export(nn.Linear(2, 2), torch.randn(1, 2)))


def test_convert_twice() -> None:
    gm = prepare_pt2e(export(nn.Linear(2, 2), torch.randn(1, 2)), CoreQuantizer())
    gm(torch.randn(1, 2))
    convert_pt2e(gm)
    with pytest.raises(NotPreparedError, match="this one is converted"):
        convert_pt2e(gm)


def test_non_node_input_annotation() -> None:
    def fn(node: Node) -> None:
        if node.target == aten.add.Tensor:
            annotate(node, {1.0: ACT})

    class M(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + 1.0

    with pytest.raises(
        AnnotationError, match=r"node 'add'.*key 1.0 of type float.*expected an fx Node"
    ):
        prepare_pt2e(export(M(), torch.randn(2)), FnQuantizer(fn))


def test_annotating_a_node_that_is_not_an_input() -> None:
    def fn(node: Node) -> None:
        if node.target == aten.mul.Tensor:
            x = next(n for n in node.graph.nodes if n.op == "placeholder")
            annotate(node, {x: ACT})

    class M(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x + 1.0) * 2.0

    with pytest.raises(
        AnnotationError, match=r"node 'mul'.*annotates node 'x', which is not an input"
    ):
        prepare_pt2e(export(M(), torch.randn(2)), FnQuantizer(fn))


def test_shared_spec_pointing_at_unannotated_target() -> None:
    def fn(node: Node) -> None:
        if node.target == aten.mul.Tensor:
            add = node.args[0]
            annotate(node, {add: SharedQuantizationSpec(add)})

    class M(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x + 1.0) * 2.0

    with pytest.raises(
        AnnotationError,
        match=r"edge 'add' -> 'mul'.*SharedQuantizationSpec\(output of node 'add'\).*no quantization spec",
    ):
        prepare_pt2e(export(M(), torch.randn(2)), FnQuantizer(fn))


def test_nan_in_calibration_names_the_node() -> None:
    gm = prepare_pt2e(export(nn.Linear(2, 2), torch.randn(1, 2)), CoreQuantizer())
    with pytest.raises(
        NonFiniteObservationError, match=r"MinMaxObserver at node 'input_1 -> linear'.*1 NaN, 0 inf"
    ):
        gm(torch.tensor([[float("nan"), 1.0]]))


def test_error_in_a_quantizer_names_the_pass() -> None:
    class Broken(CoreQuantizer):
        def validate(self, model):  # type: ignore[no-untyped-def]
            raise RuntimeError("backend cannot run this")

    with pytest.raises(RuntimeError, match="backend cannot run this") as info:
        prepare_pt2e(export(nn.Linear(2, 2), torch.randn(1, 2)), Broken())
    assert "pass 'validate'" in "".join(info.value.__notes__)
