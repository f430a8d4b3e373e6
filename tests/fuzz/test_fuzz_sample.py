"""The fuzzer's CI sample: a fixed-seed (derandomized) set of random models, each quantized with
one of the six quantizers; a few lowered to ARM, fewer to x86 (Inductor compiles: slow).
``python -m tests.fuzz --examples 2000`` runs the same checks on many more models."""

from __future__ import annotations

import pytest

from .properties import Outcome
from .runner import run

CI_EXAMPLES = 40


def test_fuzz_sample_reference_programs() -> None:
    outcomes: list[Outcome] = []
    run(CI_EXAMPLES, lower_every=8, backends=("arm",), derandomize=True, on_outcome=outcomes.append)
    assert len(outcomes) == CI_EXAMPLES
    assert sum(o.status == "ok" for o in outcomes) >= CI_EXAMPLES // 2
    assert any(o.lowered for o in outcomes)


@pytest.mark.slow
def test_fuzz_sample_x86_lowering() -> None:
    outcomes: list[Outcome] = []
    run(3, lower_every=1, backends=("x86",), derandomize=True, on_outcome=outcomes.append)
    assert [o for o in outcomes if "x86" in o.lowered]
