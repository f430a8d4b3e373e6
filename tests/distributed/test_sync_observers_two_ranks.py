"""pt2q.distributed.sync_observers under torchrun: 2 gloo ranks on this machine calibrate on
half the batches each; after the sync both convert to the same program, whose qparams equal a
single process calibrating on all batches (MinMax exactly, Histogram within
MERGED_HISTOGRAM_VS_SINGLE_PROCESS_STEPS)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from pt2q.tolerances import MERGED_HISTOGRAM_VS_SINGLE_PROCESS_STEPS, assert_within_steps

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "distributed_calibration.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("distributed_calibration", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


OBSERVERS = ("minmax", "histogram")


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """One torchrun launch (2 gloo ranks) calibrating with each observer kind in turn."""
    out = tmp_path_factory.mktemp("ranks")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
        "--nproc-per-node", "2", str(EXAMPLE), "--observer", *OBSERVERS, "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {o: [torch.load(out / f"rank{r}_{o}.pt") for r in range(2)] for o in OBSERVERS}


def _representable_range(obs_qparams: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    scale, zero_point = obs_qparams
    # XNNPACK activations: int8 [-128, 127]
    return torch.stack([(-128 - zero_point) * scale, (127 - zero_point) * scale]).double()


@pytest.mark.parametrize("observer", OBSERVERS)
def test_two_gloo_ranks_match_single_process(
    observer: str, two_ranks: dict[str, list[dict]]
) -> None:
    ranks = two_ranks[observer]
    assert ranks[0]["code"] == ranks[1]["code"]  # every rank converts to the same program
    for name, (scale, zp) in ranks[0]["qparams"].items():
        assert torch.equal(scale, ranks[1]["qparams"][name][0]), name
        assert torch.equal(zp, ranks[1]["qparams"][name][1]), name

    example = _example()
    single = example.observer_qparams(example.calibrate_single_process(observer))
    merged = ranks[0]["qparams"]
    assert merged.keys() == single.keys() and len(single) >= 8
    for name, (scale, zp) in single.items():
        m_scale, m_zp = merged[name]
        if observer == "minmax" or scale.numel() > 1:  # per-channel weights: MinMax observers
            assert torch.equal(m_scale, scale), name
            assert torch.equal(m_zp, zp), name
        else:
            assert_within_steps(
                _representable_range((m_scale, m_zp)),
                _representable_range((scale, zp)),
                scale,
                MERGED_HISTOGRAM_VS_SINGLE_PROCESS_STEPS,
                f"{name}: histogram qparams after sync_observers",
            )


def test_sync_observers_without_process_group_says_what_to_do() -> None:
    from pt2q.distributed import sync_observers

    with pytest.raises(RuntimeError, match="init_process_group.*merge_observer_state_dicts"):
        sync_observers(torch.nn.Module())
