"""``python -m tests.fuzz --examples 2000 [--lower-every 10] [--backends arm x86] [--max-steps 8]
[--seed-random]``

Runs the fuzzer on many random models, keeps going after a failure and prints a summary and
every failing model's description (rebuild it from the steps)."""

from __future__ import annotations

import argparse
import collections
import math
import time
import warnings

from .properties import FuzzFailure, Outcome
from .runner import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=200)
    ap.add_argument("--lower-every", type=int, default=10, help="lower every k-th model (0: none)")
    ap.add_argument("--backends", nargs="+", default=["arm", "x86"], choices=["arm", "x86"])
    ap.add_argument("--max-steps", type=int, default=8, help="grammar steps per model")
    ap.add_argument("--seed-random", action="store_true", help="not derandomized (new models)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    outcomes: list[Outcome] = []
    failures: list[FuzzFailure] = []
    start = time.perf_counter()
    run(
        args.examples,
        args.lower_every,
        tuple(args.backends),
        not args.seed_random,
        outcomes.append,
        failures.append,
        args.max_steps,
    )
    by = collections.Counter((o.quantizer, o.status) for o in outcomes)
    print(f"{len(outcomes) + len(failures)} runs in {time.perf_counter() - start:.0f} s")
    for (quantizer, status), n in sorted(by.items()):
        print(f"  {quantizer:22s} {status:18s} {n}")
    finite = [o.sqnr_db for o in outcomes if math.isfinite(o.sqnr_db)]
    if finite:
        print(
            f"  reference SQNR vs float: min {min(finite):.1f} dB, median {sorted(finite)[len(finite) // 2]:.1f} dB"
        )
    lowered = collections.Counter(b for o in outcomes for b in o.lowered)
    print(f"  lowered: {dict(lowered)}")
    print(f"{len(failures)} failure(s)")
    for failure in failures:
        print("-" * 80)
        print(str(failure)[:3000])
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
