"""The Python reference of the kernel spec (numpy / torch), used for golden vectors and tests.

Each function is the exact integer/fp32 math of the scalar C reference (``kernels/*/scalar.c``):
fp32 requantization ``clamp(x * scale, qmin - zp, qmax - zp)``, round half to even, ``+ zp``.
Quantize and dequantize call ``torch.ops.quantized_decomposed`` itself, so the kernels are
checked against the reference program's own ops. ``*_float`` variants do the same math in
float64 (no fp32 rounding): kernels must be within one step of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers quantized_decomposed)
import torch.nn.functional as F

__all__ = [
    "PoolGeometry",
    "requant",
    "gemm",
    "gemm_float",
    "dwconv",
    "maxpool",
    "avgpool",
    "vadd",
    "vmul",
    "quantize",
    "dequantize",
    "requantize",
    "per_row_reference",
]


@dataclass(frozen=True)
class PoolGeometry:
    """NHWC window geometry shared by depthwise conv and the pools (square windows allowed
    to differ per axis)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)

    def out_hw(self, in_h: int, in_w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
            self.kernel,
            self.stride,
            self.padding,
            self.dilation,
        )
        return (in_h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (
            in_w + 2 * pw - dw * (kw - 1) - 1
        ) // sw + 1


def requant(y: np.ndarray, zp: int, qmin: int, qmax: int) -> np.ndarray:
    """fp32 ``y`` (already times the scale) -> int8: clamp in float, round half even, + zp."""
    y = np.asarray(y, dtype=np.float32)
    y = np.minimum(np.maximum(y, np.float32(qmin - zp)), np.float32(qmax - zp))
    return (np.rint(y).astype(np.int32) + zp).astype(np.int8)


def _requant_float(y: np.ndarray, zp: int, qmin: int, qmax: int) -> np.ndarray:
    return np.clip(np.rint(np.asarray(y, dtype=np.float64)) + zp, qmin, qmax).astype(np.int8)


def gemm(a, w, bias, scale, zp: int, qmin: int, qmax: int) -> np.ndarray:
    """``C = requant(A @ W.T + bias, scale)``: a (m, k) int8, w (n, k) int8, bias/scale (n,)."""
    acc = a.astype(np.int64) @ w.astype(np.int64).T + bias.astype(np.int64)
    return requant(acc.astype(np.float32) * scale.astype(np.float32), zp, qmin, qmax)


def gemm_float(a, w, bias, scale, zp: int, qmin: int, qmax: int) -> np.ndarray:
    """``gemm`` in float64 (one rounding at the end)."""
    acc = a.astype(np.int64) @ w.astype(np.int64).T + bias.astype(np.int64)
    return _requant_float(acc * scale.astype(np.float64), zp, qmin, qmax)


def _window_sum(x_nhwc: np.ndarray, geo: PoolGeometry, pad_value: int, w=None) -> np.ndarray:
    """Exact int sums over windows (float64 conv of integers), NHWC in and out; padded taps read
    ``pad_value``. With ``w`` (taps, C) the sum is weighted per channel (depthwise)."""
    x = torch.from_numpy(x_nhwc.astype(np.float64)).permute(0, 3, 1, 2) - pad_value
    c = x.shape[1]
    kh, kw = geo.kernel
    weight = (
        torch.ones(c, 1, kh, kw, dtype=torch.float64)
        if w is None
        else torch.from_numpy(w.astype(np.float64).T.reshape(c, 1, kh, kw).copy())
    )
    y = F.conv2d(x, weight, None, geo.stride, geo.padding, geo.dilation, groups=c)
    y = y + pad_value * weight.sum(dim=(1, 2, 3)).view(1, c, 1, 1)
    return np.rint(y.permute(0, 2, 3, 1).numpy()).astype(np.int64)


def dwconv(x, w, bias, scale, geo: PoolGeometry, in_zp: int, zp: int, qmin: int, qmax: int):
    """Depthwise conv, NHWC int8 ``x``, ``w`` (taps, C), bias with the input zp folded."""
    acc = _window_sum(x, geo, in_zp, w) + bias.astype(np.int64)
    return requant(acc.astype(np.float32) * scale.astype(np.float32), zp, qmin, qmax)


def maxpool(x, geo: PoolGeometry, qmin: int, qmax: int) -> np.ndarray:
    """NHWC max pool (padding never wins), clamped to [qmin, qmax]."""
    t = torch.from_numpy(x.astype(np.float32)).permute(0, 3, 1, 2)
    y = F.max_pool2d(t, geo.kernel, geo.stride, geo.padding, geo.dilation)
    return np.clip(y.permute(0, 2, 3, 1).numpy(), qmin, qmax).astype(np.int8)


def avgpool(x, geo: PoolGeometry, in_zp: int, scale: float, zp: int, qmin: int, qmax: int):
    """NHWC average pool with count_include_pad; ``scale = s_in / (s_out * taps)``."""
    taps = geo.kernel[0] * geo.kernel[1]
    acc = _window_sum(x, geo, in_zp) - taps * in_zp
    return requant(acc.astype(np.float32) * np.float32(scale), zp, qmin, qmax)


def vadd(a, b, a_zp, b_zp, a_mul, b_mul, zp, qmin, qmax) -> np.ndarray:
    fa = (a.astype(np.int32) - a_zp).astype(np.float32) * np.float32(a_mul)
    fb = (b.astype(np.int32) - b_zp).astype(np.float32) * np.float32(b_mul)
    return requant(fa + fb, zp, qmin, qmax)


def vmul(a, b, a_zp, b_zp, ab_mul, zp, qmin, qmax) -> np.ndarray:
    prod = (a.astype(np.int32) - a_zp) * (b.astype(np.int32) - b_zp)
    return requant(prod.astype(np.float32) * np.float32(ab_mul), zp, qmin, qmax)


def quantize(x: np.ndarray, scale: float, zp: int, qmin: int, qmax: int) -> np.ndarray:
    """``quantized_decomposed.quantize_per_tensor`` itself (the kernel gets 1/scale in fp32)."""
    q = torch.ops.quantized_decomposed.quantize_per_tensor(
        torch.from_numpy(x.astype(np.float32)), scale, zp, qmin, qmax, torch.int8
    )
    return q.numpy()


def dequantize(x: np.ndarray, scale: float, zp: int) -> np.ndarray:
    """``quantized_decomposed.dequantize_per_tensor`` itself."""
    y = torch.ops.quantized_decomposed.dequantize_per_tensor(
        torch.from_numpy(x), scale, zp, -128, 127, torch.int8
    )
    return y.numpy()


def requantize(x, in_zp: int, scale: float, zp: int, qmin: int, qmax: int) -> np.ndarray:
    return requant(
        (x.astype(np.int32) - in_zp).astype(np.float32) * np.float32(scale), zp, qmin, qmax
    )


def per_row_reference(
    x: torch.Tensor, w: torch.Tensor, w_scale: torch.Tensor, bias: torch.Tensor | None, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The float64 math of ``linear_dynamic(..., per_row=True)``: each row of ``x`` (..., K)
    quantized with ``choose_qparams.tensor`` + ``quantize_per_tensor`` of that row, dequantized,
    times the dequantized weight, plus bias. Returns (output, per-row activation scale (M,))."""
    qd = torch.ops.quantized_decomposed
    x2 = x.reshape(-1, x.shape[-1])
    rows, scales = [], []
    for r in x2:
        s, zp = qd.choose_qparams.tensor(r, -128, 127, eps, torch.int8)
        rq = qd.quantize_per_tensor.tensor(r, s, zp, -128, 127, torch.int8)
        rows.append((rq.double() - float(zp)) * float(s))
        scales.append(float(s))
    wd = w.double() * w_scale.double()[:, None]
    y = torch.stack(rows) @ wd.t()
    if bias is not None:
        y = y + bias.double()
    return y.reshape(*x.shape[:-1], w.shape[0]), torch.tensor(scales, dtype=torch.float64)
