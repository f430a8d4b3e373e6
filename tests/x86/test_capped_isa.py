"""oneDNN capped below the CPU (``ONEDNN_MAX_CPU_ISA``): ``detect_isa`` follows the cap, and
under ``ONEDNN_MAX_CPU_ISA=AVX2`` (oneDNN's real ``vpmaddubsw`` kernels, on any x86 CPU) the
lowering's saturating model is bit-exact against them and a lowered program adapts its
full-range activations as on an AVX2 machine instead of saturating silently.

oneDNN reads the cap once per process, so the kernel checks run in child processes: this file
run as a script (``python test_capped_isa.py kernels|lowering``) prints one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from pt2q.lowering.x86 import CpuInt8Isa, detect_isa
from pt2q.lowering.x86.isa import onednn_isa_cap

AVX2_CAP = {"ONEDNN_MAX_CPU_ISA": "AVX2"}


def test_the_cap_is_read_as_onednn_reads_it() -> None:
    assert onednn_isa_cap({}) is None
    assert onednn_isa_cap({"ONEDNN_MAX_CPU_ISA": "avx2"}) == (
        "ONEDNN_MAX_CPU_ISA=avx2",
        (False, False, False),
    )
    assert onednn_isa_cap({"DNNL_MAX_CPU_ISA": "AVX512_CORE_VNNI"}) == (
        "DNNL_MAX_CPU_ISA=AVX512_CORE_VNNI",
        (True, False, True),
    )
    both = {"ONEDNN_MAX_CPU_ISA": "AVX2_VNNI", "DNNL_MAX_CPU_ISA": "AVX2"}
    assert onednn_isa_cap(both) == ("ONEDNN_MAX_CPU_ISA=AVX2_VNNI", (True, False, False))
    assert onednn_isa_cap({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"})[1] == (True, True, True)  # type: ignore[index]
    for no_cap in ("ALL", "default", "NOT_AN_ISA"):
        assert onednn_isa_cap({"ONEDNN_MAX_CPU_ISA": no_cap}) is None, no_cap


def test_detect_isa_follows_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    cpu = detect_isa()
    assert cpu.cap is None
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    capped = detect_isa()
    assert (capped.vnni, capped.amx, capped.avx512) == (False, False, False)
    assert not capped.exact_u8s8
    if cpu != CpuInt8Isa(vnni=False, amx=False, avx512=False):
        assert capped.describe() == "avx2 (no vnni, no amx), capped by ONEDNN_MAX_CPU_ISA=AVX2"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "ALL")
    assert detect_isa() == cpu


def _child(mode: str) -> dict[str, Any]:
    env = {k: v for k, v in __import__("os").environ.items() if k != "DNNL_MAX_CPU_ISA"}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__)), mode],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**env, **AVX2_CAP},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_saturating_model_is_onednn_avx2_arithmetic() -> None:
    """Every kernel shape the activation forms model (linear with uniform or Gaussian weights;
    conv2d: 3x3, strided, grouped, depthwise, the 3-channel stem) returns, under the AVX2 cap, exactly the int32 sums of
    ``_saturating_dot`` over ``_matrices`` on full-range uint8 x int8 operands."""
    result = _child("kernels")
    assert result["isa"] == "avx2 (no vnni, no amx)" or "capped by" in result["isa"]
    assert all(result["model_equal"].values()), result
    # the operands saturate: the test fails if oneDNN were computing exactly
    assert sum(v > 0 for v in result["exact_error"].values()) >= 6, result
    assert result["exact_error"]["linear_gaussian"] > 0, result


def test_lowering_under_the_cap_adapts_instead_of_saturating() -> None:
    """Full-range activations lowered by default under the AVX2 cap take the measured 7-bit /
    saturating forms (the first linear's uniform weights near the int8 extremes saturate int16
    pairs: 7-bit, one bit coarser; the second's Gaussian weights hardly do) and lose less than
    the per-node bound ``ISA_ADAPTED_NODE_MAX_SQNR_LOSS_DB``. Lowered as if oneDNN were exact
    (what ``detect_isa`` said before it read the cap) the real kernels saturate: measured here
    41.1 dB reference, 37.7 adapted, 21.5 as if exact."""
    r = _child("lowering")
    assert "capped by ONEDNN_MAX_CPU_ISA=AVX2" in r["isa"] or r["isa"] == "avx2 (no vnni, no amx)"
    assert r["forms"] == ["7-bit", "saturating"], r
    assert r["adapted_db"] >= r["reference_db"] - r["node_rule_db"], r
    assert r["adapted_db"] > r["as_if_exact_db"] + 10.0, r


def _kernels() -> dict[str, Any]:
    from pt2q.lowering.x86.activation_forms import _matrices, _pad4, _saturating_dot

    g = torch.Generator().manual_seed(0)
    equal: dict[str, bool] = {}
    exact_error: dict[str, float] = {}
    m, k, n = 33, 70, 24
    a = torch.randint(0, 256, (m, k), dtype=torch.uint8, generator=g)
    uniform = torch.randint(-128, 128, (n, k), dtype=torch.int8, generator=g)
    gaussian = (torch.randn(n, k, generator=g) * 40).round().clamp(-128, 127).to(torch.int8)
    # uniform weights: most pairs can saturate (every product computed); Gaussian ones: few
    # (only those pairs clamped): both of _saturating_dot's paths
    for name, w in (("linear", uniform), ("linear_gaussian", gaussian)):
        ones, zeros = torch.ones(n), torch.zeros(n, dtype=torch.int64)
        packed = torch.ops.onednn.qlinear_prepack(w, [m, k])
        y = torch.ops.onednn.qlinear_pointwise.default(
            a, 1.0, 0, packed, ones, zeros, None, 1.0, 0, torch.float32, "none", [], ""
        )
        equal[name] = torch.equal(y, _saturating_dot(_pad4(a), _pad4(w)).float())
        exact_error[name] = float((y - a.float() @ w.float().T).abs().max())
    for name, (c, o, kk, stride, pad, groups) in {
        "conv3x3": (16, 32, 3, 1, 1, 1),
        "conv3x3_s2": (24, 8, 3, 2, 1, 1),
        "conv3x3_c6": (6, 6, 3, 1, 1, 1),
        "grouped": (32, 64, 3, 1, 1, 2),
        "depthwise": (32, 32, 3, 1, 1, 32),
        "stem7x7": (3, 16, 7, 2, 3, 1),
    }.items():
        x = torch.randint(0, 256, (2, c, 9, 9), generator=g).float()
        wc = torch.randint(-128, 128, (o, c // groups, kk, kk), dtype=torch.int8, generator=g)
        graph = torch.fx.Graph()
        args = (graph.placeholder("x"), graph.placeholder("w"), None, [stride] * 2, [pad] * 2)
        conv = graph.call_function(torch.ops.aten.conv2d.default, (*args, [1, 1], groups))
        model = torch.cat(
            [_saturating_dot(r.to(torch.int64), wg) for r, wg in _matrices(conv, x, wc)], dim=1
        ).float()
        xu = x.to(torch.uint8).contiguous(memory_format=torch.channels_last)
        ones, zeros = torch.ones(o), torch.zeros(o, dtype=torch.int64)
        conv_args = ([stride] * 2, [pad] * 2, [1, 1], groups)
        packed = torch.ops.onednn.qconv_prepack(wc, ones, 1.0, 0, *conv_args, list(xu.shape))
        y = torch.ops.onednn.qconv_pointwise.default(
            xu, 1.0, 0, packed, ones, zeros, None, *conv_args, 1.0, 0, torch.float32, "none", [], ""
        )
        rows = y.permute(0, 2, 3, 1).reshape(-1, o)
        exact = torch.nn.functional.conv2d(x, wc.float(), None, stride, pad, 1, groups)
        equal[name] = torch.equal(rows, model)
        exact_error[name] = float((rows - exact.permute(0, 2, 3, 1).reshape(-1, o)).abs().max())
    return {"isa": detect_isa().describe(), "model_equal": equal, "exact_error": exact_error}


def _lowering() -> dict[str, Any]:
    from x86_models import TinyLinear, quantize, sqnr_db

    from pt2q.lowering.x86 import lower_pt2e_quantized_to_x86
    from pt2q.tolerances import ISA_ADAPTED_NODE_MAX_SQNR_LOSS_DB

    torch.manual_seed(0)
    x = torch.randn(16, 32)
    model = TinyLinear().eval()
    with torch.no_grad():
        model.b.weight.normal_(0.0, 0.05)
    ref = quantize(model, (x,), reduce_range=False)
    adapted = lower_pt2e_quantized_to_x86(ref, (x,), compile=False, payoff=False)
    as_if_exact = lower_pt2e_quantized_to_x86(
        ref, (x,), compile=False, payoff=False, isa=CpuInt8Isa(vnni=True, amx=False, avx512=True)
    )
    with torch.no_grad():
        f, r, a, e = model(x), ref(x), adapted(x), as_if_exact(x)
    return {
        "isa": adapted.report.facts["isa"],
        "forms": [
            d.reason.split(":")[0].removeprefix("activations ") for d in adapted.report.lowered
        ],
        "reference_db": sqnr_db(r, f),
        "adapted_db": sqnr_db(a, f),
        "as_if_exact_db": sqnr_db(e, f),
        "node_rule_db": ISA_ADAPTED_NODE_MAX_SQNR_LOSS_DB,
    }


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(json.dumps({"kernels": _kernels, "lowering": _lowering}[sys.argv[1]]()))
