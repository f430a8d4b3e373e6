"""XNNPACKQuantizer programs deploy through ExecuTorch (XnnpackPartitioner, .pte, its runtime)
exactly as torchao's do: the whole program is delegated and the runtime's outputs match pt2q's
reference program. Each case runs in a subprocess (tests/deploy/executorch_child.py): pt2q never
imports executorch, and torchao only runs in its own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from pt2q.tolerances import (
    LOWERED_VS_REFERENCE_STEPS,
    QUANTIZED_TENSOR_SQNR_DB,
    lowered_within_program_tolerance,
)

_CHILD = Path(__file__).with_name("executorch_child.py")
_MARK = "@@executorch@@"


def _deploy(flow: str) -> dict[str, dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, str(_CHILD), flow],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"},
    )
    for line in proc.stdout.splitlines():
        if line.startswith(_MARK):
            return json.loads(line[len(_MARK) :])
    raise AssertionError(f"{flow}: child failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")


@pytest.fixture(scope="module")
def deployed() -> dict[str, dict[str, dict[str, Any]]]:
    return {flow: _deploy(flow) for flow in ("pt2q", "torchao")}


@pytest.mark.slow
@pytest.mark.parametrize("case", ["static_per_channel_cnn", "static_per_tensor_cnn", "dynamic_mlp"])
def test_pt2q_program_deploys_like_torchao(
    case: str, deployed: dict[str, dict[str, dict[str, Any]]]
) -> None:
    ours, theirs = deployed["pt2q"][case], deployed["torchao"][case]
    # fully delegated: one XNNPACK call, nothing left for ExecuTorch's portable kernels
    assert ours["delegates"] == 1, ours
    assert ours["outside_delegate"] == [], ours
    # as torchao's program of the same model
    assert (ours["delegates"], ours["outside_delegate"]) == (
        theirs["delegates"],
        theirs["outside_delegate"],
    )
    # the runtime computes the same numbers from pt2q's program as from torchao's
    assert ours["deployed"] == theirs["deployed"]
    if (
        ours["output_scale"] is not None
    ):  # static: quantized output, within steps of pt2q's reference
        steps = ours["max_abs_diff"] / ours["output_scale"]
        assert steps <= LOWERED_VS_REFERENCE_STEPS, f"{case}: runtime off by {steps:.2f} steps"
    else:  # dynamic: XNNPACK quantizes activations per row (the reference: per tensor), so the
        # float output is judged against the float model
        runtime, float_out = torch.tensor(ours["deployed"]), torch.tensor(ours["float"])
        sqnr = 10 * torch.log10(float_out.pow(2).sum() / (runtime - float_out).pow(2).sum())
        assert sqnr >= QUANTIZED_TENSOR_SQNR_DB, f"{case}: {sqnr:.1f} dB vs float"


@pytest.mark.slow
def test_float_read_linears_deploy_as_dynamic_gemms(
    deployed: dict[str, dict[str, dict[str, Any]]],
) -> None:
    """A static config on a post-LN FFN block: pt2q's linears (read only by GELU and the float
    residual add) are per-token dynamic; ExecuTorch delegates them as XNNPACK's dynamic GEMMs, as
    much of the block as torchao's static program (layer_norm stays outside in both), in as many
    delegate calls as torchao's dynamic program of it (x's quantization, shared by two linears,
    splits the partition in both), and the runtime computes the reference program's numbers."""
    ours, theirs = deployed["pt2q"]["float_read_linears"], deployed["torchao"]["float_read_linears"]
    torchao_dynamic = deployed["torchao"]["dynamic_block"]
    assert "quantized_decomposed.choose_qparams_per_token_asymmetric.default" in ours["qdq_ops"]
    assert "quantized_decomposed.quantize_per_tensor.default" not in ours["qdq_ops"]
    assert "quantized_decomposed.quantize_per_tensor.default" in theirs["qdq_ops"]
    assert ours["delegates"] == torchao_dynamic["delegates"] == 2
    assert ours["outside_delegate"] == theirs["outside_delegate"]
    assert [op.split(">")[0] for op in ours["outside_delegate"]] == [
        "<EdgeOpOverload: aten.native_layer_norm.default"
    ]
    runtime, reference, float_out = (
        torch.tensor(ours[k]) for k in ("deployed", "reference", "float")
    )
    assert lowered_within_program_tolerance(float_out, reference, runtime)
    assert ours["max_abs_diff"] < 1e-4  # XNNPACK's per-row quantization is the reference's
