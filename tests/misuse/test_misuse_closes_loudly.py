"""Misuse that used to pass silently now raises or warns with what was expected, what was found
and what to do: lowering a prepared-but-unconverted or a float model, ARM-lowering an
x86-quantized uint8 program, calibrating with a batch size the export did not allow."""

from __future__ import annotations

import warnings

import pytest
import torch

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.prepare.guards import ExportGuardError
from pt2q.qdq.program_checks import (
    NotAConvertedProgramError,
    NothingLoweredWarning,
    qdq_dtypes,
    require_converted_program,
    warn_if_nothing_lowered,
)
from pt2q.quantizers import (
    X86InductorQuantizer,
    XNNPACKQuantizer,
    get_default_x86_inductor_quantization_config,
    get_symmetric_quantization_config,
)


def _eager() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))


X = torch.randn(2, 8)


def _exported(dynamic: bool = False) -> torch.fx.GraphModule:
    shapes = {"input": {0: torch.export.Dim("batch", min=1, max=64)}} if dynamic else None
    return torch.export.export(_eager().eval(), (X,), dynamic_shapes=shapes).module()


def _xnnpack() -> XNNPACKQuantizer:
    return XNNPACKQuantizer().set_global(get_symmetric_quantization_config())


def _x86() -> X86InductorQuantizer:
    # torchao's static uint8 linears: a program only the x86 lowering takes
    q = X86InductorQuantizer().set_token_dynamic_linears(False)
    return q.set_global(get_default_x86_inductor_quantization_config())


def _converted(quantizer: object, reference: bool = False) -> torch.fx.GraphModule:
    prepared = prepare_pt2e(_exported(), quantizer)  # type: ignore[arg-type]
    prepared(X)
    return convert_pt2e(prepared, use_reference_representation=reference)


# --- calibration with a batch size the export did not allow ------------------------------------


def test_calibration_batch_outside_the_export_names_input_and_dim() -> None:
    prepared = prepare_pt2e(_exported(), _xnnpack())
    prepared(X)
    before = {k: v.clone() for k, v in prepared.state_dict().items() if "min_val" in k}
    with pytest.raises(ExportGuardError) as info:
        prepared(torch.randn(5, 8))
    message = str(info.value)
    assert isinstance(info.value, AssertionError)  # torch's type, still caught as before
    assert "Guard failed" in message  # torch's own message is kept
    assert "'input' dim 0 is 5, exported as static 2" in message
    assert "torch.export.Dim" in message
    # the guard runs before the input observers: the rejected batch was not observed
    after = {k: v for k, v in prepared.state_dict().items() if "min_val" in k}
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_dynamic_batch_export_calibrates_with_any_batch_and_reexports() -> None:
    prepared = prepare_pt2e(_exported(dynamic=True), _xnnpack())
    for batch in (1, 3, 7):
        prepared(torch.randn(batch, 8))
    converted = convert_pt2e(prepared)
    assert converted(torch.randn(9, 8)).shape == (9, 4)
    shapes = {"input": {0: torch.export.Dim("batch", min=1, max=64)}}
    again = torch.export.export(converted, (X,), dynamic_shapes=shapes)
    assert again.module()(torch.randn(5, 8)).shape == (5, 4)


# --- is this a converted program? ---------------------------------------------------------------


def test_prepared_model_is_not_a_converted_program() -> None:
    prepared = prepare_pt2e(_exported(), _xnnpack())
    prepared(X)
    with pytest.raises(NotAConvertedProgramError) as info:
        require_converted_program(prepared, "lower_x")
    message = str(info.value)
    assert message.startswith("lower_x: expected a converted program")
    assert "'activation_post_process_0' (HistogramObserver)" in message
    assert "convert_pt2e(prepared)" in message
    assert isinstance(info.value, ValueError)


def test_float_model_is_not_a_converted_program() -> None:
    with pytest.raises(NotAConvertedProgramError, match="found a float graph.*prepare_pt2e"):
        require_converted_program(_exported(), "lower_x")
    ep = torch.export.export(_eager().eval(), (X,))
    with pytest.raises(NotAConvertedProgramError, match="found a float graph"):
        require_converted_program(ep, "lower_x")


@pytest.mark.parametrize("reference", [False, True], ids=["qdq", "reference_representation"])
def test_converted_programs_pass(reference: bool) -> None:
    converted = _converted(_xnnpack(), reference)
    require_converted_program(converted, "lower_x")
    require_converted_program(torch.export.export(_converted(_xnnpack()), (X,)), "lower_x")


def test_nothing_lowered_warning_names_dtypes_and_hint() -> None:
    converted = _converted(_x86())
    assert qdq_dtypes(converted) == {"uint8": 2}
    with pytest.warns(NothingLoweredWarning, match=r"takes int8 programs.*2 uint8.*XNNPACK"):
        warn_if_nothing_lowered("lower_x", converted, 0, "int8", "Quantize with XNNPACK.")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_nothing_lowered("lower_x", converted, 1, "int8", "")
