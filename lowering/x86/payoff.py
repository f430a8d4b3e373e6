"""Never slower than float: a conv / linear whose int8 kernel does not pay stays float.

oneDNN's int8 kernels carry a fixed cost (quantized post-op setup, u8 reorders) that a small
layer does not earn back. For every lowerable conv / linear below ``ALWAYS_PAYS_MACS``
multiply-accumulates per call (larger ones measured 1.7-2.4x faster in int8 on AVX2 and more
with VNNI, ``bench/x86.py``), the lowering times on the example activation the prepacked oneDNN
int8 kernel against the float op; when int8 is slower, the node reads the float activation (its
q/dq pair then dangles and is removed) and the report says so with both times. Timings are of
the machine that lowers.

A layer this small runs in microseconds, where one call's time is mostly timer and scheduler
noise, so each timing is the median of ``_SAMPLES`` samples, each sample the mean of as many
back-to-back calls as fill ``_MIN_SAMPLE_S``, int8 and float samples interleaved so that load on
a shared machine falls on both alike: the decision for a node does not flip from run to run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch.fx import GraphModule, Node

from pt2q.lowering.x86.llm.integer import qlinear_token_weights, token_epilogue
from pt2q.lowering.x86.llm.tokens import token_u7, token_u8
from pt2q.lowering.x86.patterns import conv_params, kernel_family
from pt2q.qdq.ops import qd
from pt2q.qdq.views import act_q, weight_q

__all__ = [
    "ALWAYS_PAYS_MACS",
    "macs",
    "median_us",
    "time_int8_vs_float",
    "time_token_int8_vs_float",
    "slower_in_int8",
]

ALWAYS_PAYS_MACS = 1 << 24
_SAMPLES = 7
_MIN_SAMPLE_S = 2e-4  # >> perf_counter resolution and call overhead; 7 x 2 x 0.2 ms per node


def macs(op: Node, x: torch.Tensor, w: torch.Tensor) -> int:
    """Multiply-accumulates of one call of ``op`` on activation ``x`` with weight ``w``."""
    if kernel_family(op) == "qlinear":
        return x.numel() // x.shape[-1] * w.numel()
    out_positions = x.shape[0] * x[0, 0].numel()  # stride-1 upper bound
    return out_positions * w.numel()


def _calls_per_sample(fn: Callable[[], object]) -> int:
    """How many back-to-back calls of ``fn`` take at least ``_MIN_SAMPLE_S`` (after warm-up)."""
    fn()
    calls = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - t0 >= _MIN_SAMPLE_S:
            return calls
        calls *= 2


def median_us(fns: tuple[Callable[[], object], ...]) -> tuple[float, ...]:
    """Per function, the median over ``_SAMPLES`` interleaved samples of its mean us per call."""
    counts = [_calls_per_sample(fn) for fn in fns]
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(_SAMPLES):
        for fn, n, out in zip(fns, counts, samples, strict=True):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            out.append((time.perf_counter() - t0) / n * 1e6)
    return tuple(statistics.median(s) for s in samples)


def time_int8_vs_float(gm: GraphModule, op: Node, x: torch.Tensor) -> tuple[float, float]:
    """(int8 us, float us) of ``op`` on float activation ``x`` (linear / conv2d)."""
    a, wq = act_q(op.args[0]), weight_q(op.args[1])
    assert a is not None and wq is not None
    s, z, qmax = float(a.scale), int(a.zero_point), a.qmax  # type: ignore[arg-type]
    w, w_scale, w_zp = wq.tensors(gm)
    w_float = (w.double() * w_scale.view(-1, *[1] * (w.dim() - 1))).float()
    bias = op.args[2] if len(op.args) > 2 else None
    b = torch.zeros(w.shape[0]) if bias is None else None
    q8 = qd.quantize_per_tensor.default(x, s, z, 0, qmax, torch.uint8)
    ws, wz = w_scale.float(), w_zp.to(torch.int64)
    with torch.no_grad():
        if kernel_family(op) == "qlinear":
            packed = torch.ops.onednn.qlinear_prepack(w, list(q8.shape))

            def int8() -> object:
                return torch.ops.onednn.qlinear_pointwise(
                    q8, s, z, packed, ws, wz, b, 1.0, 0, torch.float32, "none", [], ""
                )

            def flt() -> object:
                return torch.nn.functional.linear(x, w_float, b)
        else:
            stride, padding, dilation, groups = conv_params(op)
            packed = torch.ops.onednn.qconv_prepack(
                w, ws, s, z, stride, padding, dilation, groups, list(q8.shape)
            )
            q8 = q8.contiguous(memory_format=torch.channels_last)

            def int8() -> object:
                return torch.ops.onednn.qconv_pointwise(
                    q8, s, z, packed, ws, wz, b, stride, padding, dilation, groups,
                    1.0, 0, torch.float32, "none", [], "",
                )  # fmt: skip

            def flt() -> object:
                return torch.nn.functional.conv2d(x, w_float, b, stride, padding, dilation, groups)

        t_int8, t_float = median_us((int8, flt))
    return t_int8, t_float


def time_token_int8_vs_float(
    x: torch.Tensor,
    q: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor | None,
    seven_bit: bool = False,
) -> tuple[float, float]:
    """(int8 us, float us) of a per-token dynamic linear (8da8w) on float activation ``x``
    (..., K) with int8 weights ``q`` (N, K) and per-channel ``scale`` (N,): the uint8 tokens
    (``seven_bit``: ``token_u7``'s, the form without VNNI), the prepacked oneDNN qlinear and the
    token epilogue (``llm/integer.py``'s form, op by op) against the float linear on the
    dequantized weights."""
    x2 = x.reshape(-1, x.shape[-1])
    _, s32, zeros, scaled_sums = qlinear_token_weights(q, scale)
    w_float = (q.double() * scale.reshape(-1, 1)).float()
    b = torch.zeros(q.shape[0]) if bias is None else bias
    packed = torch.ops.onednn.qlinear_prepack(q, list(x2.shape))
    tokens = token_u7 if seven_bit else token_u8

    def int8() -> object:
        xu, s_x, z = tokens(x2)
        acc = torch.ops.onednn.qlinear_pointwise(
            xu, 1.0, 0, packed, s32, zeros, None, 1.0, 0, torch.float32, "none", [], ""
        )
        return token_epilogue(acc, s_x, z, scaled_sums) + b

    def flt() -> object:
        return torch.nn.functional.linear(x2, w_float, b)

    with torch.no_grad():
        t_int8, t_float = median_us((int8, flt))
    return t_int8, t_float


def slower_in_int8(timings: dict[str, tuple[float, float]]) -> dict[str, str]:
    """Node name -> reason, for the nodes whose int8 time exceeds their float time."""
    return {
        name: (
            f"int8 would not pay: measured {t_int8:.0f} us in oneDNN int8 vs {t_float:.0f} us "
            "in float on the example inputs"
        )
        for name, (t_int8, t_float) in timings.items()
        if t_int8 > t_float
    }
