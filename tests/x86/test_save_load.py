"""torch.export.save of a converted program, then lowering in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from x86_models import TinyLinear, last_quantize_scale, quantize

from pt2q.tolerances import LOWERED_VS_REFERENCE_STEPS, assert_within_steps

_CHILD = """
import json, sys, torch
from pt2q.lowering import lowering_report
from pt2q.lowering.x86 import lower_pt2e_quantized_to_x86
ep = torch.export.load(sys.argv[1])
x = torch.load(sys.argv[2])
low = lower_pt2e_quantized_to_x86(ep, (x,), compile=False, payoff=False)
torch.save(low(x), sys.argv[3])
r = lowering_report(low)
c = r.facts["inductor_counters"]
print(json.dumps({"lowered": [d.node for d in r.lowered], "kernels": r.kernel_counts(),
                  "prepack": c.get("qlinear_weight_prepack_matcher_count", 0)}))
"""


def test_saved_program_lowers_in_fresh_process(tmp_path: Path) -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 32)
    ref = quantize(TinyLinear(), (x,))
    program = tmp_path / "converted.pt2"
    torch.export.save(torch.export.export(ref, (x,)), program)
    torch.save(x, tmp_path / "x.pt")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(program),
            str(tmp_path / "x.pt"),
            str(tmp_path / "y.pt"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {
        "lowered": ["linear", "linear_1"],
        "kernels": {"onednn.qlinear_pointwise.default": 2},
        "prepack": 2,
    }
    with torch.no_grad():
        expected = ref(x)
    # One step of the last quantized value, as for an in-process lowering.
    assert_within_steps(
        torch.load(tmp_path / "y.pt"),
        expected,
        last_quantize_scale(ref),
        LOWERED_VS_REFERENCE_STEPS,
        "lowered-after-load output",
    )
