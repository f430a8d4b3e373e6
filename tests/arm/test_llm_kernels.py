"""The NEON LLM GEMMs (f32-qc8w, f32-qc4w, qd8-f32-qc4w; qd8-f32-gemm for 8da8w) lowered from
the LLM schemes' reference programs: numerics vs the reference, every variant bit-exact with its
scalar spec through the torch ops (host SIMDe; the qemu runs are in test_kernels_check), report
statuses, and the llvm-mca goals of the 8da4w GEMM."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
import torch
from llm_lowering.llm_programs import (
    SCHEMES,
    converted_program,
    kernel_input,
    linears,
    qd,
    weight_range,
)

from pt2q.lowering.arm.kernels import variants
from pt2q.lowering.arm.llm import WEIGHT_BYTES_FACT, lower_llm_to_arm
from pt2q.qdq import LoweringStatus, read_report
from pt2q.tolerances import LLM_WEIGHT_KERNEL_FP32_STEPS, float_dot_step, max_error_in_steps

pytestmark = pytest.mark.slow  # builds the pt2q_arm_llm C++ extension on first use

ROOT = Path(__file__).resolve().parents[2]
FAMILY = {
    "int8wo": "f32-qc8w-gemm",
    "int4wo": "f32-qc4w-gemm",
    "8da8w": "qd8-f32-gemm",
    "8da4w": "qd8-f32-qc4w-gemm",
}
# (scheme, variant) for every non-scalar variant the ARM LLM pass can pick
CASES = [(s, k.variant, k.isa) for s in SCHEMES for k in variants(FAMILY[s]) if k.isa != "scalar"]


def _program(scheme: str, n: int = 37, k: int = 128):
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(k, n))
    x = torch.randn(3, 11, k) * 2  # 33 tokens: several row blocks and a tail for every tile
    return converted_program(model, scheme, (x,), group=32, backend="xnnpack"), x


@pytest.mark.parametrize(("scheme", "variant", "isa"), CASES, ids=[f"{s}-{v}" for s, v, _ in CASES])
def test_variant_matches_scalar_spec_and_reference(scheme: str, variant: str, isa: str) -> None:
    ref, x = _program(scheme)
    low = lower_llm_to_arm(ref, (x,), isa=isa)
    (kernel,) = read_report(low).kernel_counts()
    assert kernel == f"{FAMILY[scheme]}/{variant}"
    scalar = lower_llm_to_arm(ref, isa="scalar")
    # bit-exact against the scalar spec (the same packed layout semantics, another tile)
    assert torch.equal(low(x), scalar(x))
    step = float_dot_step(kernel_input(x, scheme), weight_range(ref, linears(ref)[0]))
    err = max_error_in_steps(low(x), ref(x), step)
    assert err <= LLM_WEIGHT_KERNEL_FP32_STEPS, f"{scheme} {variant}: {err:.2f} steps"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_report_and_weight_bytes(scheme: str) -> None:
    ref, x = _program(scheme, n=64, k=256)
    low = lower_llm_to_arm(ref, (x,), isa="dot")
    report = read_report(low)
    assert len(report.lowered) == 1
    fused = report.with_status(LoweringStatus.FUSED)
    kept = report.with_status(LoweringStatus.REFERENCE)
    dynamic = scheme.startswith("8da")
    assert len(fused) == (2 if dynamic else 1)  # weight dequantize (+ dequantize_per_token)
    assert [d.op for d in kept] == (
        [
            str(qd.choose_qparams_per_token_asymmetric.default),
            str(qd.quantize_per_token.default),
        ]
        if dynamic
        else []
    )
    (nbytes,) = report.facts[WEIGHT_BYTES_FACT].values()
    per_weight = nbytes / (64 * 256)
    # int8: 1 byte + 8 bytes per channel; int4 (group 32): half a byte + 8 bytes per group
    assert per_weight == pytest.approx(
        1 + 8 / 256 if scheme in ("int8wo", "8da8w") else 0.5 + 8 / 32, rel=0.02
    )


def test_odd_group_is_kept_with_reason() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(72, 16))
    x = torch.randn(2, 72)
    ref = converted_program(model, "8da4w", (x,), group=24, backend="xnnpack")
    low = lower_llm_to_arm(ref, (x,))
    (linear,) = [d for d in read_report(low) if d.op == "aten.linear.default"]
    assert linear.status is LoweringStatus.REFERENCE
    assert "group size 24" in linear.reason
    torch.testing.assert_close(low(x), ref(x), rtol=0, atol=0)


def _bench():
    spec = importlib.util.spec_from_file_location("arm_mca", ROOT / "bench" / "arm_mca.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["arm_mca"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(
    shutil.which("llvm-mca-19") is None or shutil.which("aarch64-linux-gnu-gcc") is None,
    reason="llvm-mca-19 or aarch64-linux-gnu-gcc not installed",
)
def test_qc4w_gemm_llvm_mca_goals() -> None:
    bench = _bench()
    rows = bench.measure(["neoverse-n1", "neoverse-n2"], "llvm-mca-19", "qd8-f32-qc4w-gemm")
    results = bench.qc4w_goals(rows)
    assert len(results) == 2, results  # dot on N1, i8mm on N2
    assert all(met for _, met in results), results


@pytest.mark.parametrize("scheme", SCHEMES)
def test_arm_lowering_pattern_table_takes_llm_linears(scheme: str) -> None:
    from pt2q.lowering import lower_pt2e_quantized_to_arm

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 96), torch.nn.ReLU(), torch.nn.Linear(96, 32))
    x = torch.randn(2, 5, 64)
    ref = converted_program(model, scheme, (x,), backend="xnnpack")
    low = lower_pt2e_quantized_to_arm(ref, (x,))
    report = read_report(low)
    (kernel,) = report.kernel_counts()
    assert kernel.startswith(FAMILY[scheme] + "/") and report.kernel_counts()[kernel] == 2
    by_op = {d.op: d for d in report}
    assert by_op["aten.relu.default"].status is LoweringStatus.FLOAT  # float between the linears
    # two kernels and a float ReLU: each linear within the LLM rule (tested above); end to end
    # the errors stay at fp32 rounding level of the outputs
    torch.testing.assert_close(low(x), ref(x), rtol=1e-4, atol=1e-5)
