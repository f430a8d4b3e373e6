"""Never slower than float: a conv / linear whose int8 kernel does not pay stays float.

oneDNN's int8 kernels carry a fixed cost (quantized post-op setup, u8 reorders) that a small
layer does not earn back. For every lowerable conv / linear below ``ALWAYS_PAYS_MACS``
multiply-accumulates per call (larger ones measured 1.7-2.4x faster in int8 on AVX2 and more
with VNNI, ``bench/x86.py``), the lowering times on the example activation the prepacked oneDNN
int8 kernel against the float op, best of ``_RUNS``; when int8 is slower, the node reads the float
activation (its q/dq pair then dangles and is removed) and the report says so with both
times. Timings are of the machine that lowers.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.fx import GraphModule, Node

from pt2q.lowering.x86.patterns import conv_params, kernel_family
from pt2q.qdq.ops import qd
from pt2q.qdq.views import act_q, weight_q

__all__ = ["ALWAYS_PAYS_MACS", "macs", "time_int8_vs_float", "slower_in_int8"]

ALWAYS_PAYS_MACS = 1 << 24
_RUNS = 5


def macs(op: Node, x: torch.Tensor, w: torch.Tensor) -> int:
    """Multiply-accumulates of one call of ``op`` on activation ``x`` with weight ``w``."""
    if kernel_family(op) == "qlinear":
        return x.numel() // x.shape[-1] * w.numel()
    out_positions = x.shape[0] * x[0, 0].numel()  # stride-1 upper bound
    return out_positions * w.numel()


def _best_us(fn: Callable[[], object]) -> float:
    fn()
    best = float("inf")
    for _ in range(_RUNS):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e6


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

        return _best_us(int8), _best_us(flt)


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
