"""The lowering entry points run pt2q.qdq.program_checks first: a prepared-but-unconverted or a
float model raises, an x86-quantized uint8 program given to the ARM lowering warns."""

from __future__ import annotations

import pytest
from test_misuse_closes_loudly import X, _converted, _exported, _x86, _xnnpack

from pt2q import prepare_pt2e
from pt2q.qdq.program_checks import NotAConvertedProgramError, NothingLoweredWarning


def test_x86_lowering_refuses_prepared_and_float_models() -> None:
    from pt2q.lowering import lower_pt2e_quantized_to_x86

    prepared = prepare_pt2e(_exported(), _x86())
    prepared(X)
    with pytest.raises(NotAConvertedProgramError, match="lower_pt2e_quantized_to_x86: .*observer"):
        lower_pt2e_quantized_to_x86(prepared, (X,))
    with pytest.raises(NotAConvertedProgramError, match="lower_pt2e_quantized_to_x86: .*float"):
        lower_pt2e_quantized_to_x86(_exported(), (X,))


def test_arm_lowering_refuses_prepared_and_float_models() -> None:
    from pt2q.lowering import lower_pt2e_quantized_to_arm

    prepared = prepare_pt2e(_exported(), _xnnpack())
    prepared(X)
    with pytest.raises(NotAConvertedProgramError, match="lower_pt2e_quantized_to_arm: .*observer"):
        lower_pt2e_quantized_to_arm(prepared, (X,))
    with pytest.raises(NotAConvertedProgramError, match="lower_pt2e_quantized_to_arm: .*float"):
        lower_pt2e_quantized_to_arm(_exported(), (X,))


def test_arm_lowering_of_an_x86_uint8_program_warns() -> None:
    from pt2q.lowering import lower_pt2e_quantized_to_arm

    with pytest.warns(
        NothingLoweredWarning, match="lower_pt2e_quantized_to_arm: nothing was lowered"
    ):
        lowered = lower_pt2e_quantized_to_arm(_converted(_x86()), (X,))
    assert lowered(X).shape == (2, 4)  # still runs, in reference form
