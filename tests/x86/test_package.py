"""package_x86: an AOTInductor package of the int8 lowering, loaded and run in a process that
never imports pt2q, with the same outputs and a dynamic batch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from x86_models import MLP3d, last_quantize_scale, quantize

from pt2q.lowering.x86 import package_x86
from pt2q.tolerances import LOWERED_VS_REFERENCE_STEPS, assert_within_steps

_CHILD = """
import sys, torch
runner = torch._inductor.aoti_load_package(sys.argv[1])
for i, path in enumerate(sys.argv[2:]):
    torch.save(runner(torch.load(path)), path + ".out")
assert not any(m == "pt2q" or m.startswith("pt2q.") for m in sys.modules), "pt2q was imported"
print("ok")
"""


def _run_without_pt2q(path: str, inputs: list[torch.Tensor], tmp_path: Path) -> list[torch.Tensor]:
    """The package's outputs on ``inputs``, computed by a child process that never imports pt2q."""
    files = []
    for i, t in enumerate(inputs):
        files.append(tmp_path / f"x{i}.pt")
        torch.save(t, files[-1])
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, path, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
    return [torch.load(str(f) + ".out") for f in files]


@pytest.mark.slow
def test_package_runs_without_pt2q_with_dynamic_batch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 16, 64)
    batch = torch.export.Dim("batch", min=1, max=64)
    ref = quantize(MLP3d(), (x,), dynamic_shapes=({0: batch},))
    path = package_x86(ref, (x,), tmp_path / "mlp.pt2", payoff=False)
    assert Path(path).is_file()
    inputs = [x, torch.randn(9, 16, 64), torch.randn(1, 16, 64)]
    for t, out in zip(inputs, _run_without_pt2q(path, inputs, tmp_path), strict=True):
        with torch.no_grad():
            expected = ref(t)
        assert_within_steps(
            out,
            expected,
            last_quantize_scale(ref),
            LOWERED_VS_REFERENCE_STEPS,
            f"packaged output, batch {t.shape[0]}",
        )


def test_package_path_must_be_pt2(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"path must end with \.pt2"):
        package_x86(
            torch.fx.GraphModule(torch.nn.Module(), torch.fx.Graph()), (), tmp_path / "m.zip"
        )


@pytest.mark.slow
def test_package_of_per_token_linears_runs_without_pt2q(tmp_path: Path) -> None:
    """X86InductorQuantizer's default per-token linears (the second linear here, reading GELU;
    the first is fused with it and stays static) package as prepacked oneDNN qlinears plus aten
    ops: the child, without pt2q, returns what the in-process lowering returns, at any batch."""
    from pt2q.lowering.x86 import lower_pt2e_quantized_to_x86
    from pt2q.lowering.x86.isa import CpuInt8Isa

    torch.manual_seed(0)
    x = torch.randn(4, 16, 64)
    batch = torch.export.Dim("batch", min=1, max=64)
    ffn = nn.Sequential(nn.LayerNorm(64), nn.Linear(64, 128), nn.GELU(), nn.Linear(128, 64))
    ref = quantize(ffn, (x,), dynamic_shapes=({0: batch},), token_dynamic=True)
    per_token = torch.ops.quantized_decomposed.choose_qparams_per_token_asymmetric.default
    assert [n.target for n in ref.graph.nodes].count(per_token) == 1
    vnni = CpuInt8Isa(vnni=True, amx=False, avx512=True)  # the integer GEMM's ISA (mocked)
    low = lower_pt2e_quantized_to_x86(ref, (x,), payoff=False, isa=vnni)
    assert low.report.kernel_counts()["onednn.qlinear_pointwise (8da8w)"] == 1
    path = package_x86(ref, (x,), tmp_path / "tokens.pt2", payoff=False, isa=vnni)
    inputs = [x, torch.randn(9, 16, 64)]
    for t, out in zip(inputs, _run_without_pt2q(path, inputs, tmp_path), strict=True):
        with torch.no_grad():
            lowered = low(t)
        torch.testing.assert_close(out, lowered, rtol=1e-5, atol=1e-5)
