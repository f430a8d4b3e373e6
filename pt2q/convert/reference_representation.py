"""``convert_pt2e(..., use_reference_representation=True)``: q/dq program -> integer reference.

After the normal convert, quantized patterns ``dq -> op -> q`` are rewritten into explicit
integer arithmetic with plain aten ops (round half to even, int32 accumulation, float
requantization multiplier), then every remaining per-tensor quantize / dequantize becomes its
own arithmetic. Anything not matched stays in q/dq form and still runs. The result contains no
custom ops, so ``torch.export.export`` of it works.

Each pattern is a ``pt2q.qdq`` engine entry: a *search* function written with
``quantized_decomposed`` q/dq ops (its scalar arguments are wildcards that bind to the literals
found in the graph) and a *reference* function with the same parameter names that computes the
integer result on the bound nodes (as proxies) and literals; the engine inlines it in place of
the match.

Integer formulas (s: scale, z: zero point; x, w, out integer tensors)::

    acc_i32 = op_int32(x - z_x, w - z_w)                       # linear / conv2d, exact
    acc_i32 = acc_i32 + round(bias / (s_x * s_w))              # bias on the accumulator grid
    out     = clamp(round(acc_i32 * (s_x * s_w / s_out)) + z_out, qmin, qmax).to(dtype)
    add     = clamp(round((a - z_a) * s_a/s_out + (b - z_b) * s_b/s_out) + z_out, ...)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.fx import GraphModule, Proxy

from pt2q.qdq import searches
from pt2q.qdq.engine import Pattern, Value, keyword_replace, rewrite

__all__ = ["REFERENCE_PATTERNS", "reference_representation_rewrite"]

aten = torch.ops.aten
qd = torch.ops.quantized_decomposed

_INT32 = torch.int32


# ---------------------------------------------------------------- integer building blocks
def _to(x: Value, dtype: torch.dtype) -> Value:
    return aten._to_copy.default(x, dtype=dtype)


def _centered(x: Value, zero_point: Value, channel_view: list[int] | None = None) -> Value:
    """``x.to(int32) - zero_point``; a per-channel zero point (tensor) is viewed as given."""
    if isinstance(zero_point, Proxy):
        zero_point = _to(aten.view.default(zero_point, channel_view), _INT32)
    return aten.sub.Tensor(_to(x, _INT32), zero_point)


def _scale_product(x_scale: float, w_scale: Value, channel_view: list[int]) -> Value:
    """``x_scale * w_scale``: a float, or a per-channel float tensor viewed for broadcasting."""
    if isinstance(w_scale, Proxy):
        return aten.mul.Tensor(aten.view.default(w_scale, channel_view), x_scale)
    return x_scale * w_scale


def _requantize(
    acc_i32: Value, multiplier: Value, zero_point: int, qmin: int, qmax: int, dtype: torch.dtype
) -> Value:
    """``clamp(round(acc * multiplier) + zero_point, qmin, qmax).to(dtype)`` (half to even)."""
    scaled = aten.round.default(aten.mul.Tensor(_to(acc_i32, torch.float32), multiplier))
    shifted = aten.add.Tensor(_to(scaled, _INT32), zero_point)
    return _to(aten.clamp.default(shifted, qmin, qmax), dtype)


def _accumulate(acc_i32: Value, bias: Value, acc_scale: Value, channel_view: list[int]) -> Value:
    """Add a float bias rounded onto the accumulator grid (scale ``acc_scale``)."""
    if bias is None:
        return acc_i32
    bias_view = aten.view.default(bias, channel_view)
    bias_i32 = _to(aten.round.default(aten.div.Tensor(bias_view, acc_scale)), _INT32)
    return aten.add.Tensor(acc_i32, bias_i32)


# ---------------------------------------------------------------- q / dq
def _ref_q(x: Value, s: float, z: int, lo: int, hi: int, dt: torch.dtype) -> Value:
    # Same formula as quantized_decomposed.quantize_per_tensor: x * (1/s), round, + z, clamp.
    rounded = aten.round.default(aten.mul.Tensor(x, 1.0 / s))
    return _to(aten.clamp.default(aten.add.Tensor(rounded, z), lo, hi), dt)


def _ref_dq(x: Value, s: float, z: int, lo: int, hi: int, dt: torch.dtype) -> Value:
    # Same formula as quantized_decomposed.dequantize_per_tensor: (x.float() - z) * s.
    return aten.mul.Tensor(aten.sub.Tensor(_to(x, torch.float32), z), s)


def _ref_dq_pc(x: Value, s: Value, z: Value, axis: int, lo: int, hi: int, dt: torch.dtype) -> Value:
    # (x.float() - z[c]) * s[c] along ``axis``: move the axis last so (C,) broadcasts.
    moved = _to(aten.transpose.int(x, axis, -1), torch.float32)
    return aten.transpose.int(aten.mul.Tensor(aten.sub.Tensor(moved, z), s), axis, -1)


# ---------------------------------------------------------------- linear / conv2d
def _make_reference(op: str, relu: bool) -> Callable[..., Any]:
    """Integer reference of ``searches.weighted(op, *, relu)``; ``axis`` must be 0 if present."""

    def reference(
        x: Value,
        xs: float,
        xz: int,
        xlo: int,
        xhi: int,
        xdt: torch.dtype,
        w: Value,
        ws: Value,
        wz: Value,
        wlo: int,
        whi: int,
        wdt: torch.dtype,
        b: Value,
        os: float,
        oz: int,
        olo: int,
        ohi: int,
        odt: torch.dtype,
        axis: int = 0,
        stride: Any = None,
        padding: Any = None,
        dilation: Any = None,
        groups: Any = None,
    ) -> Value:
        weight_view = [-1, 1] if op == "linear" else [-1, 1, 1, 1]  # (OC, IC[, KH, KW])
        out_view = [-1] if op == "linear" else [1, -1, 1, 1]  # channels of (N, OC[, H, W])
        xi = _centered(x, xz)
        wi = _centered(w, wz, weight_view)
        if op == "linear":
            acc = aten.linear.default(xi, wi)  # int32 (..., OC)
        else:
            acc = aten.conv2d.default(xi, wi, None, stride, padding, dilation, groups)
        acc_scale = _scale_product(xs, ws, out_view)
        acc = _accumulate(acc, b, acc_scale, out_view)
        multiplier = (
            aten.div.Tensor(acc_scale, os) if isinstance(acc_scale, Proxy) else acc_scale / os
        )
        # A fused relu clamps at the output zero point (real 0) on the integer grid.
        return _requantize(acc, multiplier, oz, max(olo, oz) if relu else olo, ohi, odt)

    return reference


# ---------------------------------------------------------------- add (+relu), max_pool2d
def _make_reference_add(relu: bool) -> Callable[..., Any]:
    def reference(
        a: Value,
        as_: float,
        az: int,
        alo: int,
        ahi: int,
        adt: torch.dtype,
        b: Value,
        bs: float,
        bz: int,
        blo: int,
        bhi: int,
        bdt: torch.dtype,
        os: float,
        oz: int,
        olo: int,
        ohi: int,
        odt: torch.dtype,
    ) -> Value:
        a_f = aten.mul.Tensor(_to(_centered(a, az), torch.float32), as_ / os)
        b_f = aten.mul.Tensor(_to(_centered(b, bz), torch.float32), bs / os)
        summed = aten.round.default(aten.add.Tensor(a_f, b_f))
        shifted = aten.add.Tensor(_to(summed, _INT32), oz)
        lo = max(olo, oz) if relu else olo
        return _to(aten.clamp.default(shifted, lo, ohi), odt)

    return reference


def _ref_max_pool2d(
    x: Value,
    xs: float,
    xz: int,
    xlo: int,
    xhi: int,
    xdt: torch.dtype,
    kernel: list[int],
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    ceil: bool,
    os: float,
    oz: int,
    olo: int,
    ohi: int,
    odt: torch.dtype,
) -> Value:
    # max commutes with the monotonic affine map: pool the integers, then requantize
    # (the identity when input and output qparams agree, the usual shared-qparams case).
    pooled = aten.max_pool2d.default(_centered(x, xz), kernel, stride, padding, dilation, ceil)
    return _requantize(pooled, xs / os, oz, olo, ohi, odt)


# ---------------------------------------------------------------- the table
def _ref(name: str, search: Callable[..., Value], reference: Callable[..., Value]) -> Pattern:
    """One rewrite: ``search`` (q/dq form) -> ``reference`` (integer form), same parameters."""
    return Pattern(name, search, keyword_replace(reference))


def _conv_like(op: str, per_channel: bool, relu: bool) -> Pattern:
    kind = "pc" if per_channel else "pt"
    name = f"{op}{'_relu' if relu else ''}_{kind}_weight"
    return _ref(name, searches.weighted(op, per_channel, relu), _make_reference(op, relu))


# Order matters: larger patterns first, standalone q / dq last (they rewrite what is left).
REFERENCE_PATTERNS: tuple[Pattern, ...] = (
    _conv_like("linear", per_channel=False, relu=False),  # dq x, dq_pt w -> linear -> q
    _conv_like("linear", per_channel=True, relu=False),  # dq x, dq_pc w -> linear -> q
    _conv_like("linear", per_channel=False, relu=True),  # dq x, dq_pt w -> linear -> relu -> q
    _conv_like("linear", per_channel=True, relu=True),  # dq x, dq_pc w -> linear -> relu -> q
    _conv_like("conv2d", per_channel=False, relu=False),  # dq x, dq_pt w -> conv2d -> q
    _conv_like("conv2d", per_channel=True, relu=False),  # dq x, dq_pc w -> conv2d -> q
    _conv_like("conv2d", per_channel=False, relu=True),  # dq x, dq_pt w -> conv2d -> relu -> q
    _conv_like("conv2d", per_channel=True, relu=True),  # dq x, dq_pc w -> conv2d -> relu -> q
    _ref(
        "add", searches.binary("add", relu=False), _make_reference_add(False)
    ),  # dq+dq -> add -> q
    _ref(
        "add_relu", searches.binary("add", relu=True), _make_reference_add(True)
    ),  # ... -> relu -> q
    _ref("max_pool2d", searches.max_pool2d(relu=False), _ref_max_pool2d),  # dq -> max_pool2d -> q
    _ref("quantize_per_tensor", searches.q_per_tensor, _ref_q),  # q -> round/clamp/to
    _ref("dequantize_per_tensor", searches.dq_per_tensor, _ref_dq),  # dq -> (x - z) * s
    _ref("dequantize_per_channel", searches.dq_per_channel, _ref_dq_pc),  # (x - z[c]) * s[c]
)


# ---------------------------------------------------------------- the pass
def reference_representation_rewrite(model: GraphModule) -> dict[str, int]:
    """Rewrite ``model`` (a converted q/dq program) in place into the integer reference form.

    Returns how many times each pattern of ``REFERENCE_PATTERNS`` was rewritten (name -> count,
    patterns that never matched omitted). Unmatched q/dq ops (per-channel, dynamic, per-token)
    stay as they are.
    """
    counts: dict[str, int] = {}
    for pattern in REFERENCE_PATTERNS:
        n = len(rewrite(model, pattern))
        if n:
            counts[pattern.name] = n
    model.graph.eliminate_dead_code()
    model.graph.lint()
    model.recompile()
    return counts
