"""examples/custom_accelerator_quantizer.py runs end to end (in its own process, as a user runs
it) and its checks pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_accelerator_quantizer.py"


def test_custom_accelerator_example_runs() -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert "quantize_per_tensor: 7, dequantize_per_tensor: 8, per-channel dequantize: 6" in lines
    assert "float linears (module 'head'): ['linear_1']" in lines
    assert lines[-1] == "check: OK"


def test_example_imports_only_torchao_named_helpers() -> None:
    # the quantizer is written with torchao's public names only (what a vendor copies)
    source = EXAMPLE.read_text()
    imports = source.split("from pt2q.quantizer import (")[1].split(")")[0].split()
    names = {name.rstrip(",") for name in imports}
    assert names == {
        "DerivedQuantizationSpec", "OperatorConfig", "QuantizationConfig", "QuantizationSpec",
        "Quantizer", "SharedQuantizationSpec", "annotate_input_qspec_map",
        "annotate_output_qspec", "get_bias_qspec", "get_input_act_qspec",
        "get_module_name_filter", "get_output_act_qspec", "get_weight_qspec",
    }  # fmt: skip
