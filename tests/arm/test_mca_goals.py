"""Issue 5 item 6: llvm-mca evidence that the GEMM inner loops reach the throughput goals, and
dispatch picking the larger tile where it pays."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pt2q.lowering.arm.ops import select_variant

ROOT = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("arm_mca", ROOT / "bench" / "arm_mca.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["arm_mca"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


needs_mca19 = pytest.mark.skipif(
    shutil.which("llvm-mca-19") is None or shutil.which("aarch64-linux-gnu-gcc") is None,
    reason="llvm-mca-19 (real Neoverse models) or aarch64-linux-gnu-gcc not installed",
)


@needs_mca19
def test_llvm_mca_goals_met() -> None:
    bench = _bench()
    rows = bench.measure(["neoverse-n1", "cortex-a76", "neoverse-n2"], "llvm-mca-19")
    results = bench.goals(rows)
    assert len(results) == 3, results  # dot on N1 and A76, i8mm/dot on N2
    assert all(met for _, met in results), results
    # i8mm only on a core that has SMMLA; the peaks are the documented pipe counts
    assert {r.cpu for r in rows if r.isa == "i8mm"} == {"neoverse-n2"}
    peak = {(r.isa, r.cpu): round(r.peak) for r in rows}
    assert peak[("dot", "neoverse-n1")] == peak[("dot", "cortex-a76")] == 32
    assert peak[("i8mm", "neoverse-n2")] == 64


@needs_mca19
def test_models_differ_per_core() -> None:
    bench = _bench()
    rows = bench.measure(["neoverse-n1", "cortex-a76"], "llvm-mca-19")
    cycles = {(r.variant, r.cpu): r.cycles for r in rows}
    # LLVM 19 models Cortex-A76 with the Cortex-A57 model (one load pipe): slower 4x8 dot loop
    assert cycles[("4x8-neon-dot", "cortex-a76")] > cycles[("4x8-neon-dot", "neoverse-n1")]


def test_mac_count_of_a_loop() -> None:
    bench = _bench()
    loop = ["ldr q0, [x1]", "sdot v16.4s, v0.16b, v1.4b[0]", "smmla v17.4s, v0.16b, v1.16b"]
    assert bench.macs_of(loop) == 16 + 32


@pytest.mark.parametrize(
    ("isa", "n", "want"),
    [
        ("neon", 64, "4x8-neon-mlal"),
        ("dot", None, "4x16-neon-dot"),
        ("dot", 8, "4x8-neon-dot"),
        ("dot", 10, "4x16-neon-dot"),
        ("dot", 40, "4x8-neon-dot"),
        ("dot", 1000, "4x16-neon-dot"),
        ("i8mm", 64, "4x16-neon-i8mm"),
        ("i8mm", 3, "4x8-neon-i8mm"),
    ],
)
def test_dispatch_picks_best_gemm_tile(isa: str, n: int | None, want: str) -> None:
    assert select_variant("qs8-gemm", isa, n=n).variant == want
