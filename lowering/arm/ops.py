"""The ``torch.ops.pt2q_arm`` operators: a thin C++ extension over the C kernels, built on
first use (``torch.utils.cpp_extension.load`` with ninja) and cached under the pt2q cache dir,
plus fake kernels so graphs holding these ops survive ``torch.export``.

``load_ops()`` is idempotent. Op contracts (all int8 tensors are plain ``torch.int8``):

* ``pack_gemm(w (N, K), bias int32 (N), scale f32 (N), variant) -> uint8 bytes``
* ``linear(x (..., K), packed, n, zp, qmin, qmax, variant) -> (..., N)``
* ``pack_gemm_dynamic(w (N, K), scale f32 (N), variant)`` (a ``qd8-f32-gemm`` variant) and
  ``linear_dynamic(x f32 (..., K), packed, bias f32 (N) or None, n, qmin, qmax, eps, per_row,
  variant) -> f32 (..., N)``: activations quantized per row (or per tensor) like
  ``choose_qparams.tensor`` + ``quantize_per_tensor``, exact int32 GEMM, float epilogue
* ``conv2d(x NCHW, packed, n, kernel, stride, padding, dilation, groups, in_zp, zp, qmin,
  qmax, variant) -> NCHW`` (packed holds ``groups`` GEMM blocks of W (N/g, kh*kw*C/g), OHWI)
* ``pack_dwconv(w (taps, C), bias, scale, variant)``; ``dwconv2d(x, packed, kernel, stride,
  padding, dilation, in_zp, zp, qmin, qmax, variant)``
* ``max_pool2d``, ``avg_pool2d``, ``add``, ``mul``, ``quantize``, ``dequantize``: see
  ``kernels/common/kernels.h`` for the math.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import torch

from pt2q.lowering.arm.build import load_extension
from pt2q.lowering.arm.kernels import ISAS, KERNELS, Kernel

__all__ = ["load_ops", "cpu_isa", "select_variant", "GEMM_PADDING_SLACK"]

_LOCK = threading.Lock()
_LOADED = False


def _out_hw(x: torch.Tensor, kernel, stride, padding, dilation) -> tuple[int, int]:
    oh = (x.shape[2] + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    ow = (x.shape[3] + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    return oh, ow


def _nchw(x: torch.Tensor, c: int, oh: int, ow: int) -> torch.Tensor:
    return x.new_empty((x.shape[0], oh, ow, c)).permute(0, 3, 1, 2)


def _register_fakes() -> None:
    lib = "pt2q_arm::"

    @torch.library.register_fake(lib + "linear")
    def _linear(x, packed, n, zp, qmin, qmax, variant):
        return x.new_empty((*x.shape[:-1], n))

    @torch.library.register_fake(lib + "linear_dynamic")
    def _linear_dynamic(x, packed, bias, n, qmin, qmax, eps, per_row, variant):
        return x.new_empty((*x.shape[:-1], n))

    @torch.library.register_fake(lib + "conv2d")
    def _conv2d(
        x, packed, n, kernel, stride, padding, dilation, groups, in_zp, zp, qmin, qmax, variant
    ):
        return _nchw(x, n, *_out_hw(x, kernel, stride, padding, dilation))

    @torch.library.register_fake(lib + "dwconv2d")
    def _dwconv2d(x, packed, kernel, stride, padding, dilation, in_zp, zp, qmin, qmax, variant):
        return _nchw(x, x.shape[1], *_out_hw(x, kernel, stride, padding, dilation))

    @torch.library.register_fake(lib + "max_pool2d")
    def _max_pool2d(x, kernel, stride, padding, dilation, qmin, qmax, variant):
        return _nchw(x, x.shape[1], *_out_hw(x, kernel, stride, padding, dilation))

    @torch.library.register_fake(lib + "avg_pool2d")
    def _avg_pool2d(x, kernel, stride, padding, in_zp, scale, zp, qmin, qmax, variant):
        return _nchw(x, x.shape[1], *_out_hw(x, kernel, stride, padding, (1, 1)))

    @torch.library.register_fake(lib + "add")
    def _add(a, b, a_zp, b_zp, a_mul, b_mul, zp, qmin, qmax, variant):
        return a.new_empty(torch.broadcast_shapes(a.shape, b.shape))

    @torch.library.register_fake(lib + "mul")
    def _mul(a, b, a_zp, b_zp, ab_mul, zp, qmin, qmax, variant):
        return a.new_empty(torch.broadcast_shapes(a.shape, b.shape))

    @torch.library.register_fake(lib + "quantize")
    def _quantize(x, inv_scale, zp, qmin, qmax, variant):
        return x.new_empty(x.shape, dtype=torch.int8)

    @torch.library.register_fake(lib + "dequantize")
    def _dequantize(x, zp, scale, variant):
        return x.new_empty(x.shape, dtype=torch.float32)


def load_ops() -> None:
    """Build (first call; cached across sessions) and load the extension, then register the
    fake kernels. Raises ``pt2q.lowering.arm.build.BuildError`` or the loader's error, with
    the compiler output, when the build fails."""
    global _LOADED
    with _LOCK:
        if _LOADED:
            return
        load_extension("pt2q_arm_ops", "ops.cpp", "ext")
        _register_fakes()
        _LOADED = True


def cpu_isa() -> str:
    """The strongest kernel ISA this CPU runs (``PT2Q_ARM_ISA`` may lower it): one of
    ``ISAS``. On x86 hosts SIMDe emulates every ISA, so this says ``"i8mm"``."""
    load_ops()
    return ISAS[torch.ops.pt2q_arm.cpu_isa()]


# A larger GEMM tile is picked unless it computes more than this fraction of extra (padded)
# output columns over the tightest tile: 4x16 beats 4x8 per MAC (README's llvm-mca table).
GEMM_PADDING_SLACK = 0.125


def select_variant(
    family: str, isa: str | None = None, prefer: Sequence[str] = (), n: int | None = None
) -> Kernel:
    """The variant of ``family`` to use: the first of ``prefer`` (variant names) the CPU runs,
    else one of the strongest ISA that ``isa`` (default: ``cpu_isa()``) allows, the one listed
    last in ``KERNELS`` (the larger tile). For a GEMM with ``n`` output channels, a variant
    whose padded width ``round_up(n, nr)`` exceeds the tightest one's by more than
    ``GEMM_PADDING_SLACK`` is skipped (n=8 runs 4x8, n=10 or n=1000 runs 4x16)."""
    allowed = ISAS.index(isa if isa is not None else cpu_isa())
    usable = [k for k in KERNELS if k.family == family and ISAS.index(k.isa) <= allowed]
    if not usable:
        raise KeyError(f"select_variant: no variant of {family!r} runs at ISA level {isa!r}")
    for name in prefer:
        for k in usable:
            if k.variant == name:
                return k
    top = max(ISAS.index(k.isa) for k in usable)
    best = [k for k in usable if ISAS.index(k.isa) == top]
    if n is not None and family.endswith("-gemm"):
        padded = {k: -(-n // k.tile[1]) * k.tile[1] for k in best}
        tightest = min(padded.values())
        best = [k for k in best if padded[k] <= tightest * (1 + GEMM_PADDING_SLACK)]
    return best[-1]
