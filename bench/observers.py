"""Observer calibration cost: pt2q's HistogramObserver against MinMaxObserver and torchao's.

    .venv/bin/python bench/observers.py [--batches 8] [--numel 1000000] [--repeats 5]
                                        [--threads 2] [--device cpu|cuda]

Calibration = ``batches`` forward calls on ``numel``-element float32 batches (widening ranges,
so the histogram is re-binned too) plus one ``calculate_qparams``. Prints per-observer times
(median over repeats) and the ratios Histogram / MinMax (goal <= 1.2) and pt2q Histogram /
torchao Histogram, plus the qparams both histograms chose. torchao is optional: without it the
torchao rows are skipped. Timings on a shared machine are noisy: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from pt2q.observer import HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver

try:
    from torchao.quantization.pt2e import observer as torchao_observer
except ImportError:  # optional bench extra
    torchao_observer = None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def calibrate(
    make: Callable[[], Any], data: list[torch.Tensor], repeats: int, device: torch.device
) -> tuple[float, float, Any]:
    """Median (forward seconds for all batches, calculate_qparams seconds) and the qparams."""
    fwd, qp = [], []
    qparams = None
    for _ in range(repeats + 1):  # the first run warms up (allocator, lazy tables)
        obs = make().to(device)
        _sync(device)
        t0 = time.perf_counter()
        for x in data:
            obs(x)
        _sync(device)
        t1 = time.perf_counter()
        qparams = obs.calculate_qparams()
        _sync(device)
        t2 = time.perf_counter()
        fwd.append(t1 - t0)
        qp.append(t2 - t1)
    return statistics.median(fwd[1:]), statistics.median(qp[1:]), qparams


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--numel", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    data = [
        (torch.randn(args.numel) * (1 + i % 3) + 0.1 * i).to(device) for i in range(args.batches)
    ]

    rows: dict[str, Callable[[], Any]] = {
        "pt2q MinMaxObserver": MinMaxObserver,
        "pt2q MovingAverageMinMaxObserver": MovingAverageMinMaxObserver,
        "pt2q HistogramObserver": HistogramObserver,
    }
    if torchao_observer is not None:
        rows["torchao MinMaxObserver"] = torchao_observer.MinMaxObserver
        rows["torchao HistogramObserver"] = torchao_observer.HistogramObserver

    print(
        f"{args.batches} batches x {args.numel} float32 on {device}, {args.threads} threads, "
        f"median of {args.repeats} (torch {torch.__version__})"
    )
    print(f"{'observer':34s} {'forward ms/batch':>17s} {'qparams ms':>11s} {'total ms':>9s}")
    totals: dict[str, float] = {}
    qparams: dict[str, Any] = {}
    for name, make in rows.items():
        fwd, qp, qparams[name] = calibrate(make, data, args.repeats, device)
        totals[name] = fwd + qp
        print(
            f"{name:34s} {fwd / args.batches * 1e3:17.3f} {qp * 1e3:11.2f} {totals[name] * 1e3:9.1f}"
        )

    hist, minmax = totals["pt2q HistogramObserver"], totals["pt2q MinMaxObserver"]
    moving = totals["pt2q MovingAverageMinMaxObserver"]
    print(f"\npt2q Histogram / pt2q MinMax calibration: {hist / minmax:.2f}x (goal <= 1.2x)")
    # MovingAverage is MinMax's aminmax with the NaN/inf check read off the min/max (no full
    # isfinite pass): the cost floor of any observer that must look at every element.
    print(f"pt2q Histogram / pt2q MovingAverageMinMax calibration: {hist / moving:.2f}x")
    if torchao_observer is not None:
        ref = totals["torchao HistogramObserver"]
        print(f"pt2q Histogram / torchao Histogram calibration: {hist / ref:.2f}x")
        (s, z), (rs, rz) = qparams["pt2q HistogramObserver"], qparams["torchao HistogramObserver"]
        print(
            f"qparams: pt2q scale {s.item():.6g} zp {z.item()} | "
            f"torchao scale {rs.item():.6g} zp {rz.item()}"
        )


if __name__ == "__main__":
    main()
