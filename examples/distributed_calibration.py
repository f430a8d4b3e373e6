"""Calibrate one model on several processes and convert it identically on each.

Run with 2 ranks on one CPU machine (gloo)::

    torchrun --standalone --nnodes 1 --nproc-per-node 2 examples/distributed_calibration.py

Every rank exports and prepares the same model, calibrates on its own shard of the data
(batches rank, rank + world, ...), then ``pt2q.distributed.sync_observers`` merges the
observers' statistics across ranks, so every rank's ``convert_pt2e`` gives the same program:
the one a single process calibrating on all batches gives (min/max observers exactly, histogram
observers within ``pt2q.tolerances.MERGED_HISTOGRAM_VS_SINGLE_PROCESS_STEPS``).
``--observer minmax`` swaps the activations' HistogramObserver for MinMaxObserver;
``--out DIR`` writes each rank's qparams and converted code to ``DIR/rank<r>_<observer>.pt`` (the
CI test
compares them with a single-process run of ``calibrate_single_process``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.fx import GraphModule

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.distributed import sync_observers
from pt2q.observer import MinMaxObserver
from pt2q.observer.state_dict import observer_modules
from pt2q.quantizers import XNNPACKQuantizer, get_symmetric_quantization_config

N_BATCHES = 8


def build_model() -> GraphModule:
    """A small CNN + MLP head, exported with a batch of 4."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16),
        nn.Hardtanh(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(256, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    ).eval()
    return torch.export.export(model, (torch.randn(4, 3, 16, 16),)).module()


def calibration_batches() -> list[torch.Tensor]:
    """Deterministic heavy-tailed batches whose ranges differ (so shards see different ranges)."""
    gen = torch.Generator().manual_seed(1)
    return [
        torch.randn(4, 3, 16, 16, generator=gen).pow(3) * (1.0 + 0.5 * i) for i in range(N_BATCHES)
    ]


def make_quantizer(observer: str) -> XNNPACKQuantizer:
    """XNNPACK static per-channel; activations observed by HistogramObserver or MinMaxObserver."""
    config = get_symmetric_quantization_config(is_per_channel=True)
    if observer == "minmax":
        assert config.input_activation is not None
        act = dataclasses.replace(
            config.input_activation, observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2**-12)
        )
        config = dataclasses.replace(config, input_activation=act, output_activation=act)
    return XNNPACKQuantizer().set_global(config)


def observer_qparams(prepared: GraphModule) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Observer name -> (scale, zero_point), for every observer with statistics."""
    result = {}
    for name, obs in observer_modules(prepared):
        if getattr(obs, "has_observed", False) and hasattr(obs, "min_val"):
            scale, zero_point = obs.calculate_qparams()
            result[name] = (scale.clone(), zero_point.clone())
    return result


def calibrate_single_process(observer: str) -> GraphModule:
    """The reference: one process, all batches."""
    prepared = prepare_pt2e(build_model(), make_quantizer(observer))
    for batch in calibration_batches():
        prepared(batch)
    return prepared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--observer", choices=["histogram", "minmax"], nargs="+", default=["histogram"]
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    dist.init_process_group("gloo")  # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR/PORT
    rank, world = dist.get_rank(), dist.get_world_size()
    for observer in args.observer:
        prepared = prepare_pt2e(build_model(), make_quantizer(observer))
        shard = calibration_batches()[rank::world]
        for batch in shard:
            prepared(batch)
        sync_observers(prepared)
        qparams = observer_qparams(prepared)
        converted = convert_pt2e(prepared)
        print(f"rank {rank}/{world} {observer}: {len(shard)} batches, {len(qparams)} observers")
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            result = {"qparams": qparams, "code": converted.code}
            torch.save(result, args.out / f"rank{rank}_{observer}.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    main()
