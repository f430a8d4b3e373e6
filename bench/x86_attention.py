"""Attention on int8, measured: does any int8 batched matmul available to Inductor on CPU beat
fp32 for attention shapes (scores = Q @ K^T, context = P @ V)?

    .venv/bin/python bench/x86_attention.py --threads 2

Candidates in torch 2.13 (CPU): ``torch._int_mm`` (s8 x s8 -> s32, 2-D: one call per head) and
oneDNN's u8 x s8 matmul through ``onednn.qlinear_pointwise`` (its "weight", K or V, is an
activation here, so it is quantized and prepacked on every call). Inductor has no int8 pattern
for activation x activation matmul (its dequant-bmm pattern is for constant weights). Each int8
time includes the quantize of its operands, as a lowering would have to pay it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

SHAPES = {  # name: (batch * heads, tokens, head dim)
    "minilm 8x32": (8 * 12, 32, 32),
    "bert-base 1x128": (12, 128, 64),
}


def _ms(fn: Callable[[], object], iters: int = 20) -> float:
    """Best of ``iters`` after one warm-up call (robust to a loaded machine)."""
    fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return min(times)


def _q8(x: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, float]:
    scale = float(x.abs().max()) / 127 or 1.0
    lo = 0 if dtype == torch.uint8 else -128
    shift = 128 if dtype == torch.uint8 else 0
    return (torch.round(x / scale) + shift).clamp(lo, lo + 255).to(dtype), scale


def int_mm(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    qs, sq = _q8(q, torch.int8)
    ks, sk = _q8(k, torch.int8)
    kt = ks.transpose(1, 2).contiguous()
    return torch.stack([torch._int_mm(qs[i], kt[i]) for i in range(q.shape[0])]).float() * (sq * sk)


def onednn_u8s8(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    qu, sq = _q8(q, torch.uint8)
    outs = []
    for i in range(q.shape[0]):
        ks, sk = _q8(k[i], torch.int8)
        packed = torch.ops.onednn.qlinear_prepack(ks, list(qu[i].shape))
        w_scale, w_zp = torch.full((k.shape[1],), sk), torch.zeros(k.shape[1], dtype=torch.int64)
        outs.append(
            torch.ops.onednn.qlinear_pointwise(
                qu[i], sq, 128, packed, w_scale, w_zp, None, 1.0, 0, torch.float32, "none", [], ""
            )
        )
    return torch.stack(outs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    torch.set_num_threads(p.parse_args().threads)
    torch.manual_seed(0)
    print(f"{'shape':<18} {'fp32 bmm':>9} {'_int_mm':>9} {'onednn u8s8':>12}  (scores Q @ K^T, ms)")
    for name, (bh, t, d) in SHAPES.items():
        q, k = torch.randn(bh, t, d), torch.randn(bh, t, d)
        ref = torch.bmm(q, k.transpose(1, 2))
        for fn in (int_mm, onednn_u8s8):
            err = (fn(q, k) - ref).abs().max() / ref.abs().max()
            assert err < 0.05, f"{fn.__name__} wrong: relative error {err:.3f}"
        t_fp32 = _ms(lambda q=q, k=k: torch.bmm(q, k.transpose(1, 2)))
        t_int = _ms(lambda q=q, k=k: int_mm(q, k))
        t_dnn = _ms(lambda q=q, k=k: onednn_u8s8(q, k))
        print(
            f"{name:<18} {t_fp32:>7.3f}ms {t_int:>7.3f}ms {t_dnn:>10.3f}ms  "
            f"int8 / fp32: {t_int / t_fp32:.1f}x, {t_dnn / t_fp32:.1f}x slower"
        )


if __name__ == "__main__":
    main()
