"""The q/dq forms of the reference program, as search functions every pattern table reuses.

Each returns a function to trace (see ``pt2q.qdq.engine``); its parameters are wildcards with
these names, so a replace function reads the same names from every table:

| names                                  | what                                                   |
| -------------------------------------- | ------------------------------------------------------ |
| ``x, xs, xz, xlo, xhi, xdt``           | activation input: int tensor, scale, zp, qmin, qmax, dtype |
| ``a, as_, az, ...`` / ``b, bs, bz, ...`` | the two inputs of a binary op                        |
| ``w, ws, wz, [axis,] wlo, whi, wdt``   | weight (``axis`` only for per-channel)                 |
| ``b`` (weighted ops)                   | bias: a float constant or None                         |
| ``stride, padding, dilation, groups``  | conv / pool parameters                                 |
| ``os, oz, olo, ohi, odt``              | the closing quantize                                   |

The search functions are unannotated on purpose: every parameter is a wildcard (a traced value
or, once matched, a literal), and ``torch.fx.symbolic_trace`` records annotations as types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from pt2q.qdq.ops import qd

__all__ = [
    "q_per_tensor",
    "dq_per_tensor",
    "dq_per_channel",
    "weighted",
    "binary",
    "max_pool2d",
    "dynamic_linear",
]

aten = torch.ops.aten
Search = Callable[..., Any]


def q_per_tensor(x, s, z, lo, hi, dt):
    """``q(x)`` with literal qparams (bindings ``x, s, z, lo, hi, dt``)."""
    return qd.quantize_per_tensor.default(x, s, z, lo, hi, dt)


def dq_per_tensor(x, s, z, lo, hi, dt):
    """``dq(x)`` with literal qparams (bindings ``x, s, z, lo, hi, dt``)."""
    return qd.dequantize_per_tensor.default(x, s, z, lo, hi, dt)


def dq_per_channel(x, s, z, axis, lo, hi, dt):
    """``dq(x)`` per channel (``s``, ``z`` are buffers)."""
    return qd.dequantize_per_channel.default(x, s, z, axis, lo, hi, dt)


def _dq_weight(w, ws, wz, wlo, whi, wdt, axis, per_channel: bool):
    if per_channel:
        return qd.dequantize_per_channel.default(w, ws, wz, axis, wlo, whi, wdt)
    return qd.dequantize_per_tensor.default(w, ws, wz, wlo, whi, wdt)


def weighted(op: str, per_channel: bool, relu: bool) -> Search:
    """``dq(x), dq(w) -> linear / conv2d(x, w, b, ...) [-> relu] -> q``; ``op`` is
    ``"linear"`` or ``"conv2d"``."""
    if op not in ("linear", "conv2d"):
        raise ValueError(f"weighted: op must be 'linear' or 'conv2d', got {op!r}")

    def search(
        x,
        xs,
        xz,
        xlo,
        xhi,
        xdt,
        w,
        ws,
        wz,
        wlo,
        whi,
        wdt,
        axis,
        b,
        stride,
        padding,
        dilation,
        groups,
        os,
        oz,
        olo,
        ohi,
        odt,
    ):
        xf = qd.dequantize_per_tensor.default(x, xs, xz, xlo, xhi, xdt)
        wf = _dq_weight(w, ws, wz, wlo, whi, wdt, axis, per_channel)
        if op == "linear":
            y = aten.linear.default(xf, wf, b)
        else:
            y = aten.conv2d.default(xf, wf, b, stride, padding, dilation, groups)
        if relu:
            y = aten.relu.default(y)
        return qd.quantize_per_tensor.default(y, os, oz, olo, ohi, odt)

    return search  # parameters unused by this variant are dropped after tracing


def binary(op: str, relu: bool) -> Search:
    """``dq(a), dq(b) -> add.Tensor / mul.Tensor [-> relu] -> q``; ``op`` is ``"add"`` or
    ``"mul"``."""
    target = {"add": aten.add.Tensor, "mul": aten.mul.Tensor}[op]

    def search(a, as_, az, alo, ahi, adt, b, bs, bz, blo, bhi, bdt, os, oz, olo, ohi, odt):
        af = qd.dequantize_per_tensor.default(a, as_, az, alo, ahi, adt)
        bf = qd.dequantize_per_tensor.default(b, bs, bz, blo, bhi, bdt)
        y = target(af, bf)
        if relu:
            y = aten.relu.default(y)
        return qd.quantize_per_tensor.default(y, os, oz, olo, ohi, odt)

    return search


def max_pool2d(relu: bool) -> Search:
    """``dq(x) -> max_pool2d(x, kernel, stride, padding, dilation, ceil) [-> relu] -> q``."""

    def search(
        x, xs, xz, xlo, xhi, xdt, kernel, stride, padding, dilation, ceil, os, oz, olo, ohi, odt
    ):
        xf = qd.dequantize_per_tensor.default(x, xs, xz, xlo, xhi, xdt)
        y = aten.max_pool2d.default(xf, kernel, stride, padding, dilation, ceil)
        if relu:
            y = aten.relu.default(y)
        return qd.quantize_per_tensor.default(y, os, oz, olo, ohi, odt)

    return search


def dynamic_linear(per_channel: bool) -> Search:
    """``linear(dq(q(x, choose_qparams(x))), dq(w), b)``: activations quantized at run time
    (bindings ``x, xlo, xhi, eps, xdt`` and the weight's), float output."""

    def search(x, xlo, xhi, eps, xdt, w, ws, wz, wlo, whi, wdt, axis, b):
        qparams = qd.choose_qparams.tensor(x, xlo, xhi, eps, xdt)
        s, z = qparams[0], qparams[1]
        xq = qd.quantize_per_tensor.tensor(x, s, z, xlo, xhi, xdt)
        xf = qd.dequantize_per_tensor.tensor(xq, s, z, xlo, xhi, xdt)
        wf = _dq_weight(w, ws, wz, wlo, whi, wdt, axis, per_channel)
        return aten.linear.default(xf, wf, b)

    return search
