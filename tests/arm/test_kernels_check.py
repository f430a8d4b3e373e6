"""The NEON kernels against the scalar spec and the Python reference: natively through SIMDe,
and on the aarch64 ISA under qemu-user for CPUs without dotprod, with dotprod, with i8mm."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from pt2q.lowering.arm import reference as ref
from pt2q.lowering.arm.build import AARCH64_CC, build_driver
from pt2q.lowering.arm.check import QEMU, QEMU_CPUS, golden_records, run_driver, write_golden
from pt2q.tolerances import KERNEL_VS_FLOAT_REFERENCE_STEPS

needs_cross = pytest.mark.skipif(
    shutil.which(AARCH64_CC) is None or shutil.which(QEMU) is None,
    reason=f"{AARCH64_CC} or {QEMU} not installed (scripts/apt-packages.txt lists them)",
)


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_golden(tmp_path_factory.mktemp("arm") / "golden.bin", seed=0)


def test_golden_covers_every_family_with_variants() -> None:
    families = {name for name, *_ in golden_records(seed=0)}
    assert families == {
        "qs8-gemm",
        "qs8-dwconv",
        "s8-maxpool",
        "qs8-avgpool",
        "qs8-vadd",
        "qs8-vmul",
        "f32-qs8-vcvt",
        "qs8-f32-vcvt",
        "qs8-vcvt",
    }


def test_reference_gemm_within_one_step_of_float() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, size=(7, 40), dtype=np.int8)
    w = rng.integers(-127, 128, size=(9, 40), dtype=np.int8)
    bias = rng.integers(-3000, 3000, size=9).astype(np.int32)
    scale = rng.uniform(1e-4, 3e-3, size=9).astype(np.float32)
    got = ref.gemm(a, w, bias, scale, 5, -128, 127).astype(np.int64)
    exact = ref.gemm_float(a, w, bias, scale, 5, -128, 127).astype(np.int64)
    # one step: fp32 vs float64 requantization rounds once differently at most
    assert np.abs(got - exact).max() <= KERNEL_VS_FLOAT_REFERENCE_STEPS
    # and the outputs really spread over the range (not all clamped)
    assert len(np.unique(got)) > 30  # of 63 outputs


def test_host_simde_driver_passes(golden: Path) -> None:
    result = run_driver(build_driver("host"), golden, None)
    assert result.ok, result.output
    assert result.isa == "i8mm"  # SIMDe emulates every variant
    assert "golden records: " in result.output


def test_isa_override_limits_variants(golden: Path) -> None:
    full = run_driver(build_driver("host"), golden, None)
    limited = run_driver(build_driver("host"), golden, None, env={"PT2Q_ARM_ISA": "neon"})
    assert limited.ok, limited.output
    assert limited.isa == "neon"
    assert limited.checks < full.checks


def test_corrupted_golden_fails(tmp_path: Path, golden: Path) -> None:
    data = bytearray(golden.read_bytes())
    data[-1] ^= 0x01  # last byte of the last record's expected output
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(data))
    result = run_driver(build_driver("host"), bad, None)
    assert result.returncode == 1
    assert result.mismatches > 0
    assert "MISMATCH" in result.output


def test_truncated_golden_is_an_input_error(tmp_path: Path, golden: Path) -> None:
    bad = tmp_path / "short.bin"
    bad.write_bytes(golden.read_bytes()[:100] + struct.pack("<I", 7))
    result = run_driver(build_driver("host"), bad, None)
    assert result.returncode == 2


@needs_cross
@pytest.mark.parametrize("cpu", list(QEMU_CPUS), ids=list(QEMU_CPUS))
def test_aarch64_under_qemu(cpu: str, golden: Path) -> None:
    result = run_driver(build_driver("aarch64"), golden, cpu)
    assert result.ok, result.output
    assert result.isa == QEMU_CPUS[cpu]
