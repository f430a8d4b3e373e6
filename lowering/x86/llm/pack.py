"""Packing LLM weights once, at lowering, for torch's x86 CPU weight kernels.

* int8 per channel, symmetric -> ``aten._weight_int8pack_mm(x (M, K), w int8 (N, K), scale (N))``
  computes ``(x @ w.T) * scale``.
* int8 per channel, symmetric, for int8 per-token activations on a CPU with VNNI (8da8w) ->
  ``aten._int_mm(xq (M, K), w.T)``: int32 sums of products, exact; with the token zero point
  ``z`` and the weight's column sums ``c = sum_k w``, ``(acc - z c) * scale_x * scale`` is the
  reference's ``((xq - z) scale_x) @ (w scale).T`` up to float32 rounding.
* int8 per channel, symmetric, for the int16 fixed-point tokens of an int8 weight-only linear on
  a CPU with VNNI (``tokens.inline_token_q16``) -> ``aten._int_mm`` likewise: the tokens are
  symmetric, so no column sums.
* int4 per group (32 / 64 / 128 / 256) -> ``aten._convert_weight_to_int4pack_for_cpu`` (two
  nibbles a byte, N padded to a multiple of 16) and ``aten._weight_int4pack_mm_for_cpu(x,
  packed, group, scale_zeros (K / group, N, 2))``, which dequantizes ``(u - 8) * scale + zero``
  from unsigned nibbles ``u`` in [0, 15]. The reference computes ``(q - zp) * scale``; with
  ``u = q - qmin`` and ``zp' = zp - qmin`` the float-domain zero is ``(8 - zp') * scale``,
  computed in float64 from the integer zero point and rounded once to the compute dtype.
* int4 per group, symmetric, for the int8 tokens of 8da4w over many rows (a prefill) on a CPU
  with VNNI -> ``pack_int4_as_int16``: the nibbles stored planar (byte j of a row holds column
  j in its low nibble and column j + K/2 in its high one), with per-group multipliers
  ``m = F * scale / S`` (``S`` the row's largest group scale, ``F = INT16_WEIGHT_UNITS``). Each
  call rebuilds ``w16 = round(q * m)`` (a 16-bit fixed-point weight, one unit ``S / F``) as two
  int8 halves ``w16 = 256 hi + lo`` for ``aten._int_mm``; the row sums of ``w16`` are kept for
  the tokens' zero point.

Every packed tensor is a plain tensor the lowering registers as a buffer; ``nbytes`` of those
buffers is the lowered program's weight size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pt2q.lowering.llm.match import LlmWeight, NotLlm

__all__ = [
    "INT4_GROUP_SIZES",
    "INT4_N_MULTIPLE",
    "INT16_WEIGHT_UNITS",
    "PackedWeight",
    "int16_weight_problem",
    "int16_weight_unit",
    "pack_int4_as_int16",
    "pack_weight",
]

INT4_GROUP_SIZES = (32, 64, 128, 256)  # what _weight_int4pack_mm_for_cpu accepts
INT4_N_MULTIPLE = 16  # _convert_weight_to_int4pack_for_cpu needs N % 16 == 0: pad with zeros
_INNER_K_TILES = 2
INT16_WEIGHT_UNITS = 4079  # F: |q * m| <= 8 F = 32632 <= 32639, the largest |w16| split into int8

aten = torch.ops.aten


@dataclass(frozen=True)
class PackedWeight:
    """A weight ready for its kernel: ``tensors`` are (packed weight, scales[-and-zeros]
    [, column sums]), ``kernel`` the aten op's name, ``n`` the real out_features (the kernel
    may compute more)."""

    kernel: str
    tensors: tuple[torch.Tensor, ...]
    n: int
    group_size: int

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors)


def _int8(w: LlmWeight, dtype: torch.dtype, int_mm: bool, column_sums: bool) -> PackedWeight:
    if not w.per_channel:
        raise NotLlm(
            f"weight {w.node.name}: int8 per-group weights (group {w.group_size}); torch's x86 "
            "int8 weight kernel takes one scale per output channel"
        )
    if bool((w.zero_point != 0).any()):
        raise NotLlm(
            f"weight {w.node.name}: int8 weights with non-zero zero points; "
            "aten._weight_int8pack_mm is symmetric (quantize the weights symmetrically)"
        )
    q = w.q.contiguous()
    if int_mm:
        scale32 = w.scale.reshape(-1).to(torch.float32)
        sums = (q.sum(1, dtype=torch.int32),) if column_sums else ()
        return PackedWeight("aten._int_mm", (q, scale32, *sums), q.shape[0], 0)
    scale = w.scale.reshape(-1).to(dtype)
    return PackedWeight("aten._weight_int8pack_mm", (q, scale), q.shape[0], 0)


def _int4(w: LlmWeight, dtype: torch.dtype) -> PackedWeight:
    n, k = w.q.shape
    group = w.group_size
    if group not in INT4_GROUP_SIZES:
        raise NotLlm(
            f"weight {w.node.name}: int4 group size {group}; aten._weight_int4pack_mm_for_cpu "
            f"takes {INT4_GROUP_SIZES}"
        )
    u = w.q.to(torch.int32) - w.qmin  # unsigned nibbles, [0, 15]
    if int(u.min()) < 0 or int(u.max()) > 15:
        raise NotLlm(f"weight {w.node.name}: values outside [{w.qmin}, {w.qmax}]")
    zero = (8.0 - (w.zero_point - w.qmin)) * w.scale  # float64, exact for integer zero points
    n_pad = -(-n // INT4_N_MULTIPLE) * INT4_N_MULTIPLE
    if n_pad != n:
        u = torch.cat([u, torch.full((n_pad - n, k), 8, dtype=torch.int32)])
        pad = torch.zeros((n_pad - n, w.scale.shape[1]), dtype=torch.float64)
        scale, zero = torch.cat([w.scale, pad]), torch.cat([zero, pad])
    else:
        scale = w.scale
    packed = aten._convert_weight_to_int4pack_for_cpu(u.contiguous(), _INNER_K_TILES)
    scale_zeros = torch.stack([scale.t(), zero.t()], dim=-1).to(dtype).contiguous()  # (G, N, 2)
    return PackedWeight("aten._weight_int4pack_mm_for_cpu", (packed, scale_zeros), n, group)


def pack_weight(
    w: LlmWeight,
    dtype: torch.dtype = torch.float32,
    int_mm: bool = False,
    column_sums: bool = True,
) -> PackedWeight:
    """Pack ``w`` for the kernel of its bit width, scales in ``dtype`` (the activations' dtype
    at the kernel: float32, or bfloat16 for the fast path); ``int_mm``: an int8 weight for
    ``aten._int_mm`` on integer tokens (scales float32), with its int32 column sums when
    ``column_sums`` (tokens with a zero point). Raises NotLlm with the reason when no torch x86
    kernel takes it."""
    return _int4(w, dtype) if w.bits == 4 else _int8(w, dtype, int_mm, column_sums)


def int16_weight_unit(w: LlmWeight) -> torch.Tensor:
    """(N,) float32: the unit ``S / F`` of ``w``'s 16-bit fixed-point weights (``S`` the row's
    largest group scale)."""
    return (w.scale.amax(1) / INT16_WEIGHT_UNITS).to(torch.float32)


def int16_weights(planar: torch.Tensor, mult: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(hi, lo) int8 halves of ``w16 = round(q * m) = 256 hi + lo`` for the first K/2 columns,
    then for the last K/2: four (N, K/2) tensors, from planar nibbles (N, K/2) uint8 and
    multipliers (N, K/group) float32. Runs at lowering (the row sums) and, traced, in the
    lowered program, where it is one vectorized loop writing four buffers (measured: an
    interleaved layout, or the halves stacked for one product, made Inductor materialize
    concatenations and tripled a Llama prefill's cost)."""
    half = planar.shape[1]
    groups = mult.shape[1] // 2
    group = half // groups
    out: list[torch.Tensor] = []
    for nibble, m in (
        (torch.bitwise_and(planar, 15), mult[:, :groups]),
        (torch.bitwise_right_shift(planar, 4), mult[:, groups:]),
    ):
        w16 = torch.round((nibble.to(torch.float32) - 8.0) * m.repeat_interleave(group, 1))
        hi = torch.floor((w16 + 128.0) * (1.0 / 256.0))
        out += [hi.to(torch.int8), (w16 - 256.0 * hi).to(torch.int8)]
    return tuple(out)


def int16_weight_problem(w: LlmWeight) -> str | None:
    """Why ``pack_int4_as_int16`` cannot take ``w``, or None when it can."""
    if w.bits != 4 or w.qmin != -8 or bool((w.zero_point != 0).any()):
        return "not symmetric int4 in [-8, 7]"
    if w.q.shape[1] % (2 * w.group_size):
        return f"K {w.q.shape[1]} is not a multiple of twice the group"
    return None


def pack_int4_as_int16(w: LlmWeight) -> PackedWeight:
    """Pack symmetric int4 group weights ([-8, 7], zero points 0, K a multiple of twice the
    group) for ``int16_weights`` + ``aten._int_mm``: (planar nibbles, multipliers, row sums of
    w16 int32, unit float32). Raises NotLlm when ``w`` is not such a weight."""
    problem = int16_weight_problem(w)
    if problem is not None:
        raise NotLlm(f"weight {w.node.name}: {problem}")
    n, k = w.q.shape
    u = (w.q.to(torch.int32) + 8).to(torch.uint8)  # [0, 15]
    planar = torch.bitwise_or(u[:, : k // 2], torch.bitwise_left_shift(u[:, k // 2 :], 4))
    unit = int16_weight_unit(w)
    mult = (w.scale / w.scale.amax(1, keepdim=True) * INT16_WEIGHT_UNITS).to(torch.float32)
    halves = int16_weights(planar, mult)
    sums = torch.zeros(n, dtype=torch.int32)
    for hi, lo in (halves[:2], halves[2:]):
        sums += 256 * hi.sum(1, dtype=torch.int32) + lo.sum(1, dtype=torch.int32)
    tensors = (planar.contiguous(), mult.contiguous(), sums, unit)
    return PackedWeight("aten._int_mm", tensors, n, w.group_size)
