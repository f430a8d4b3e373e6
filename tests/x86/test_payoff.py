"""Never slower than float: a small conv / linear whose int8 kernel measures slower stays
float, with both times in the report (timings mocked for determinism, then measured once)."""

from __future__ import annotations

import itertools
import time

import pytest
import torch
from host_isa import skip_numerics_unless_host_runs
from x86_models import TinyLinear, quantize

import pt2q.lowering.x86.lower as lower_mod
from pt2q.lowering.x86 import lower_pt2e_quantized_to_x86
from pt2q.lowering.x86.payoff import (
    ALWAYS_PAYS_MACS,
    median_us,
    slower_in_int8,
    time_int8_vs_float,
)
from pt2q.qdq import LoweringStatus


def test_slower_in_int8_names_both_times() -> None:
    assert slower_in_int8({"a": (30.0, 10.0), "b": (5.0, 10.0)}) == {
        "a": "int8 would not pay: measured 30 us in oneDNN int8 vs 10 us in float on the "
        "example inputs"
    }


def test_a_node_that_does_not_pay_stays_float(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 32)
    ref = quantize(TinyLinear(), (x,))
    assert 4 * 32 * 64 < ALWAYS_PAYS_MACS  # both linears are small enough to be timed
    timed: list[str] = []

    def fake(gm: torch.fx.GraphModule, op: torch.fx.Node, xv: torch.Tensor) -> tuple[float, float]:
        timed.append(op.name)
        assert xv.shape == (4, 32 if op.name == "linear" else 64)
        return (50.0, 20.0) if op.name == "linear" else (10.0, 20.0)

    monkeypatch.setattr(lower_mod, "time_int8_vs_float", fake)
    low = lower_pt2e_quantized_to_x86(ref, (x,), compile=False)
    assert timed == ["linear", "linear_1"]
    decisions = {d.node: d for d in low.report if d.op == "aten.linear.default"}
    assert decisions["linear"].status is LoweringStatus.FLOAT
    assert decisions["linear"].reason.startswith("int8 would not pay: measured 50 us")
    assert decisions["linear_1"].status is LoweringStatus.LOWERED
    # the float linear reads its weight as a float constant with the reference's dequantized
    # values (freezing then prepacks it for MKL): no dequantize left to run on every call
    ops = [str(n.target) for n in low.graph.nodes if n.op == "call_function"]
    assert not [t for t in ops if "dequantize" in t], ops
    assert "mkl._mkl_linear" in ops, ops
    with torch.no_grad():  # float first linear, int8 second: close to the reference
        torch.testing.assert_close(low(x), ref(x), atol=0.1, rtol=0.05)


def test_measured_times_are_positive() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 32)
    ref = quantize(TinyLinear(), (x,))
    linear = next(n for n in ref.graph.nodes if n.name == "linear")
    t_int8, t_float = time_int8_vs_float(ref, linear, x)
    assert t_int8 > 0 and t_float > 0


def test_timing_is_a_median_of_filled_samples() -> None:
    """A one-off stall (scheduler, page fault) does not decide; a sample spans many calls of a
    microsecond op, not one timer tick."""
    calls = itertools.count()

    def stalls_once() -> None:
        if next(calls) == 40:
            time.sleep(0.05)  # 50 ms, once

    def sleeps() -> None:
        time.sleep(1e-3)

    t_stall, t_sleep = median_us((stalls_once, sleeps))
    assert t_stall < 100 < 1000 <= t_sleep
    assert next(calls) > 7 * 16  # 7 samples of many calls each (plus the sizing runs)


def test_a_per_token_linear_that_does_not_pay_reads_its_float_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """X86InductorQuantizer's per-token linears (8da8w's form) are timed too, before the LLM
    pass: the slow one computes on its float input and a float constant weight (no per-token
    q/dq left for it), FLOAT with both times; the other runs the oneDNN qlinear."""
    from pt2q.lowering.x86.isa import CpuInt8Isa

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.LayerNorm(32),
        torch.nn.Linear(32, 64),
        torch.nn.LayerNorm(64),
        torch.nn.Linear(64, 16),
    )
    x = torch.randn(4, 32)
    ref = quantize(model, (x,), token_dynamic=True)
    timed: list[tuple[int, ...]] = []

    def fake(
        xv: torch.Tensor, q: torch.Tensor, scale: torch.Tensor, bias: object, seven_bit: bool
    ) -> tuple[float, float]:
        assert not seven_bit  # VNNI: the full-range tokens
        timed.append(tuple(q.shape))
        assert xv.shape == (4, q.shape[1]) and xv.dtype == torch.float32
        return (50.0, 20.0) if q.shape == (64, 32) else (10.0, 20.0)

    monkeypatch.setattr(lower_mod, "time_token_int8_vs_float", fake)
    vnni = CpuInt8Isa(vnni=True, amx=False, avx512=True)
    low = lower_pt2e_quantized_to_x86(ref, (x,), compile=False, isa=vnni)
    assert timed == [(64, 32), (16, 64)]
    decisions = {d.node: d for d in low.report if d.op == "aten.linear.default"}
    assert decisions["linear"].status is LoweringStatus.FLOAT
    assert decisions["linear"].reason.startswith("int8 would not pay: measured 50 us")
    assert decisions["linear_1"].kernel == "onednn.qlinear_pointwise (8da8w)"
    per_token = [n for n in low.graph.nodes if "per_token" in str(n.target)]
    assert not per_token  # the kept one's q/dq are gone, the other's are inlined aten ops
    skip_numerics_unless_host_runs(vnni)  # full-range tokens
    with torch.no_grad():  # float first linear, int8 second: close to the reference
        torch.testing.assert_close(low(x), ref(x), atol=0.05, rtol=0.05)
