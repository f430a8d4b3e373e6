"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import torch


def keep_torchao_out() -> None:
    """Stop transformers from importing torchao into a process that measures pt2q.

    transformers imports torchao from its quantizer integration whenever torchao is installed,
    and torchao registers global Inductor passes on import. Benchmarks run torchao only in
    their own subprocesses; call this before importing transformers' model classes.
    """
    import transformers.utils
    import transformers.utils.import_utils

    def absent(*_args: object, **_kwargs: object) -> bool:
        return False

    transformers.utils.is_torchao_available = absent
    transformers.utils.import_utils.is_torchao_available = absent


def median_times(fn: Callable[[], dict[str, float]], repeats: int) -> dict[str, float]:
    """Median of each stage's seconds over ``repeats`` runs of ``fn``."""
    runs = [fn() for _ in range(repeats)]
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def available_flows() -> list[str]:
    """pt2q, plus torchao when the optional bench extra is installed."""
    try:
        import torchao  # noqa: F401
    except ImportError:
        print("torchao not installed: pt2q figures only (pip install -e '.[bench]')")
        return ["pt2q"]
    return ["pt2q", "torchao"]


def parse_bench_args() -> argparse.Namespace:
    """``--repeats`` (default 3) and ``--threads`` (default 2, applied to torch)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads={args.threads} repeats={args.repeats} (median seconds per stage)")
    return args
