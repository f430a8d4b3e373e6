"""package_x86: an AOTInductor package of the int8 lowering, loaded and run in a process that
never imports pt2q, with the same outputs and a dynamic batch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
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


@pytest.mark.slow
def test_package_runs_without_pt2q_with_dynamic_batch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 16, 64)
    batch = torch.export.Dim("batch", min=1, max=64)
    ref = quantize(MLP3d(), (x,), dynamic_shapes=({0: batch},))
    path = package_x86(ref, (x,), tmp_path / "mlp.pt2", payoff=False)
    assert Path(path).is_file()
    inputs = [x, torch.randn(9, 16, 64), torch.randn(1, 16, 64)]
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
    for t, f in zip(inputs, files, strict=True):
        with torch.no_grad():
            expected = ref(t)
        assert_within_steps(
            torch.load(str(f) + ".out"),
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
