"""Config precedence: module name > module type > function type > global; None = float."""

from __future__ import annotations

import pytest
import torch
from helpers import describe, export
from models import Precedence
from torch import nn

from pt2q.quantizer import QuantizationConfig
from pt2q.quantizers import (
    X86InductorQuantizer,
    XNNPACKQuantizer,
    coverage,
    get_default_x86_inductor_quantization_config,
    get_symmetric_quantization_config,
)

X86 = get_default_x86_inductor_quantization_config()
DYN = get_default_x86_inductor_quantization_config(is_dynamic=True)


def quantized_nodes(q: X86InductorQuantizer | XNNPACKQuantizer) -> list[str]:
    gm = export(Precedence(), torch.randn(2, 16))
    q.annotate(gm)
    return coverage(gm).quantized


@pytest.mark.parametrize(
    "setup, expected",
    [
        pytest.param(
            lambda q: q.set_global(X86), ["linear", "linear_1", "linear_2", "conv1d"], id="global"
        ),
        pytest.param(
            lambda q: q.set_global(X86).set_module_type_qconfig(nn.Linear, None),
            ["linear_2", "conv1d"],
            id="module_type_none_beats_global",
        ),
        pytest.param(
            lambda q: (
                q.set_global(X86)
                .set_module_type_qconfig(nn.Linear, None)
                .set_module_name_qconfig("sub.fc", X86)
            ),
            ["linear", "linear_2", "conv1d"],
            id="module_name_beats_module_type",
        ),
        pytest.param(
            lambda q: q.set_global(X86).set_function_type_qconfig(nn.functional.linear, None),
            ["conv1d"],
            id="function_type_none_beats_global",
        ),
        pytest.param(
            lambda q: (
                q.set_global(None)
                .set_function_type_qconfig(nn.functional.linear, None)
                .set_module_type_qconfig(nn.Linear, X86)
            ),
            ["linear", "linear_1"],
            id="module_type_beats_function_type",
        ),
        pytest.param(
            lambda q: q.set_module_name_qconfig("sub", X86),
            ["linear"],
            id="module_name_only",
        ),
        pytest.param(
            lambda q: q.set_global(X86).set_module_name_qconfig("sub", None),
            ["linear_1", "linear_2", "conv1d"],
            id="parent_module_name_none",
        ),
    ],
)
def test_x86_precedence(setup, expected: list[str]) -> None:  # noqa: ANN001
    q = X86InductorQuantizer()
    setup(q)
    assert quantized_nodes(q) == expected


def test_float_reason_names_the_rule() -> None:
    gm = export(Precedence(), torch.randn(2, 16))
    q = X86InductorQuantizer().set_global(X86).set_module_name_qconfig("sub", None)
    q.annotate(gm)
    assert coverage(gm).float_reasons == {"linear": "config is None (module name 'sub')"}


def test_innermost_module_name_wins() -> None:
    gm = export(Precedence(), torch.randn(2, 16))
    q = X86InductorQuantizer().set_module_name_qconfig("sub", None)
    q.set_module_name_qconfig("sub.fc", DYN)
    q.annotate(gm)
    assert describe(gm) == "linear: in(x=u8dyn, sub_fc_weight=i8c0) out=-"


XNN: QuantizationConfig = get_symmetric_quantization_config()


@pytest.mark.parametrize(
    "setup, expected",
    [
        pytest.param(
            lambda q: q.set_global(XNN).set_operator_type(torch.ops.aten.linear, None),
            ["conv1d"],
            id="operator_type_packet_none",
        ),
        pytest.param(
            lambda q: (
                q.set_global(XNN)
                .set_operator_type(torch.ops.aten.linear.default, None)
                .set_module_type(nn.Linear, XNN)
            ),
            ["linear", "linear_1", "conv1d"],
            id="module_type_beats_operator_type",
        ),
        pytest.param(
            lambda q: q.set_global(XNN).set_module_name("fc1", None),
            ["linear", "linear_2", "conv1d"],
            id="module_name_none",
        ),
        pytest.param(
            lambda q: q.set_global(XNN).set_filter_function(lambda n: n.name != "linear_2"),
            ["linear", "linear_1", "conv1d"],
            id="filter_function",
        ),
    ],
)
def test_xnnpack_precedence(setup, expected: list[str]) -> None:  # noqa: ANN001
    q = XNNPACKQuantizer()
    setup(q)
    assert quantized_nodes(q) == expected
