"""Drive the grammar and the properties with hypothesis, for the CI sample and the CLI."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .grammar import models
from .properties import QUANTIZERS, FuzzFailure, Outcome, check


def run(
    examples: int,
    lower_every: int,
    backends: tuple[str, ...],
    derandomize: bool,
    on_outcome: Callable[[Outcome], None],
    on_failure: Callable[[FuzzFailure], None] | None = None,
    max_steps: int = 6,
) -> None:
    """Check ``examples`` random models against every quantizer; lower every ``lower_every``-th
    model's programs (0: never). ``on_failure`` None: the first failure raises (and hypothesis
    shrinks it); otherwise failures are reported and the run goes on."""
    count = {"n": 0}

    @settings(
        max_examples=examples,
        derandomize=derandomize,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(spec=models(max_steps=max_steps), quantizer=st.sampled_from(sorted(QUANTIZERS)))
    def body(spec, quantizer):  # type: ignore[no-untyped-def]
        count["n"] += 1
        lower = backends if lower_every and count["n"] % lower_every == 0 else ()
        try:
            on_outcome(check(spec, quantizer, lower))
        except FuzzFailure as failure:
            if on_failure is None:
                raise
            on_failure(failure)

    body()
