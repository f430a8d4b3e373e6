"""The int8 kernels this test host runs, for tests that mock the x86 ISA facts.

Tests pass ``isa=CpuInt8Isa(...)`` to choose a lowering's path on any machine, but the kernels
that then run are the host's. A lowering for VNNI (full-range uint8 activations, int8 tokens
for ``aten._int_mm``) run by a host whose oneDNN has no VNNI (an AVX2 CPU, or
``ONEDNN_MAX_CPU_ISA=AVX2``) goes through ``vpmaddubsw``'s saturating int16 pairs: its
structure is still the lowering's to check, its numerics are not. ``skip_numerics_unless_host_runs``
ends such a test there, skipped with that reason, after its structural checks.
"""

from __future__ import annotations

import pytest

from pt2q.lowering.x86.isa import CpuInt8Isa, detect_isa

__all__ = ["HOST_ISA", "host_runs", "skip_numerics_unless_host_runs"]

HOST_ISA = detect_isa()


def host_runs(isa: CpuInt8Isa) -> bool:
    """True when this host's oneDNN computes what a lowering for ``isa`` assumes: the exact
    full-range path needs exact u8*s8 accumulation; an ISA without it runs anywhere."""
    return HOST_ISA.exact_u8s8 or not isa.exact_u8s8


def skip_numerics_unless_host_runs(isa: CpuInt8Isa) -> None:
    """Skip the rest of the calling test (its numerics) when the host cannot run ``isa``'s
    kernels exactly."""
    if not host_runs(isa):
        pytest.skip(
            f"numerics of a lowering for {isa.describe()} need its kernels; this host's oneDNN "
            f"is {HOST_ISA.describe()}"
        )
