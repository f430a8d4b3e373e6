"""What an int8 kernel call costs beyond its arithmetic, on the ATen oneDNN ops the x86 lowering
emits (the part of ResNet-50's time that no lowering choice in pt2q can remove).

    .venv/bin/python bench/x86_call_cost.py --threads 2

- fixed cost: ``onednn.qconv_pointwise`` on a 2x8x1x1 input, 1x1 kernel (no arithmetic to speak
  of; oneDNN's own ``ONEDNN_VERBOSE`` reports ~1 us cache-hit create + ~2 us execute for it):
  what remains is ATen's per-call work (the convolution primitive descriptor is built again on
  every call, the primitive then comes from oneDNN's cache; scratchpad, scales). Timed inside
  ATen by the profiler (the op's own CPU time: no Python, which the AOTInductor wrapper does not
  run either), and from Python for comparison;
- the residual adds: ``qconv2d_pointwise.binary`` with the "sum" post-op writes into its
  accumulator and returns a copy of it (custom ops may not return an alias of an input); the
  copies of ResNet-50 batch 2's 16 accumulators, timed alone (warm cache: a lower bound).

Multiplied by ResNet-50's kernel calls (53 convs + 1 linear) this gives the milliseconds per
inference that ExecuTorch's XNNPACK runtime, which creates its operators once at load, does not
pay.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

RESNET50_CALLS = 54  # 53 qconv (37 unary, 16 binary "sum") + 1 qlinear: the AOTInductor wrapper's
# accumulator shapes of ResNet-50 batch 2 (C, H = W) and how many of each
RESNET50_ACCUMULATORS = {(256, 56): 3, (512, 28): 4, (1024, 14): 6, (2048, 7): 3}


def _us(fn: Callable[[], object], calls: int = 2000, rounds: int = 7) -> float:
    """Median over ``rounds`` of the mean time of ``calls`` calls, microseconds."""
    for _ in range(100):
        fn()
    means = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        means.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(means)


def tiny_qconv() -> Callable[[], object]:
    c = 8
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 255, (2, c, 1, 1), dtype=torch.uint8, generator=g)
    x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randint(-127, 127, (c, c, 1, 1), dtype=torch.int8, generator=g)
    ws, wz = torch.full((c,), 0.01), torch.zeros(c, dtype=torch.int64)
    packed = torch.ops.onednn.qconv_prepack(w, ws, 0.02, 3, [1, 1], [0, 0], [1, 1], 1, [2, c, 1, 1])
    op = torch.ops.onednn.qconv_pointwise.default
    args = (x, 0.02, 3, packed, ws, wz, None, [1, 1], [0, 0], [1, 1], 1, 0.05, 5, None, "none", [])
    return lambda: op(*args, "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    fn = tiny_qconv()
    call = _us(fn)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(500):
            fn()
    (event,) = [e for e in prof.key_averages() if e.key == "onednn::qconv_pointwise"]
    fixed = event.cpu_time_total / event.count  # us, inside the op
    copies = 0.0
    for (c, hw), n in RESNET50_ACCUMULATORS.items():
        acc = torch.empty(2, c, hw, hw, dtype=torch.uint8).contiguous(
            memory_format=torch.channels_last
        )
        copies += n * _us(acc.clone, calls=200)
    print(f"torch {torch.__version__}, {a.threads} threads")
    print(f"qconv_pointwise, 2x8x1x1 input: {fixed:.1f} us per call inside ATen (profiler), "
          f"{call:.1f} us from Python")  # fmt: skip
    print(f"ResNet-50 batch 2: {RESNET50_CALLS} calls x {fixed:.1f} us = "
          f"{RESNET50_CALLS * fixed / 1e3:.2f} ms per inference; accumulator copies of the 16 "
          f"'sum' convs >= {copies / 1e3:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
