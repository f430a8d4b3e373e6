"""The one place where numeric tolerances live, in units of quantization steps (scales).

Every numeric assertion in tests, checks and benchmarks takes its tolerance from here, so the
policy is written once. A "step" is the quantization scale of the tensor being compared: a
tolerance of 1 step on a uint8 output with scale s allows |a - b| <= 1 * s elementwise.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "KERNEL_VS_SCALAR_REFERENCE_STEPS",
    "KERNEL_VS_FLOAT_REFERENCE_STEPS",
    "QDQ_VS_HAND_REFERENCE_STEPS",
    "IN_RANGE_ROUNDING_STEPS",
    "LOWERED_VS_REFERENCE_STEPS",
    "LOWERED_BF16_VS_REFERENCE_STEPS",
    "ISA_ADAPTED_MAX_SQNR_LOSS_DB",
    "ISA_ADAPTED_NODE_MAX_SQNR_LOSS_DB",
    "sqnr_loss_db",
    "MERGED_HISTOGRAM_VS_SINGLE_PROCESS_STEPS",
    "max_error_in_steps",
    "assert_within_steps",
    "QUANTIZED_TENSOR_SQNR_DB",
    "PROGRAM_SQNR_FLOOR_DB",
    "LOWERED_PROGRAM_ERROR_RATIO",
    "program_min_sqnr_db",
    "lowered_within_program_tolerance",
]

# A NEON/SIMD kernel against the scalar C reference: bit-exact.
KERNEL_VS_SCALAR_REFERENCE_STEPS = 0
# Any integer kernel against a float computation of the same quantized math: one step
# (the final requantize rounds once).
KERNEL_VS_FLOAT_REFERENCE_STEPS = 1
# A converted (reference) program against a hand-written q/dq computation: exact in the
# quantized domain; one step allowed for float re-association in the op between q/dq.
QDQ_VS_HAND_REFERENCE_STEPS = 1
# A quantize -> dequantize round trip of a value inside the representable range (e.g. a weight
# whose qparams span its min..max, as float-qparams embedding rows do) against the float value:
# round to nearest moves it by at most half a step (plus float32 noise on the scale, 1e-3).
IN_RANGE_ROUNDING_STEPS = 0.5 + 1e-3
# A lowered program (oneDNN / NEON ops) against the reference program, per quantized output:
# accumulation order and fused requantization may move a value by one step at a rounding tie.
LOWERED_VS_REFERENCE_STEPS = 1
# The same with int8-mixed-bf16: values between int8 kernels are rounded to bf16 (8 mantissa
# bits), which can move a requantized value across one more rounding boundary.
LOWERED_BF16_VS_REFERENCE_STEPS = 2
# An ISA-adapted lowering (x86 without VNNI: full-range uint8 activations run in the saturating
# int16 kernel or re-quantized to 7 bits) is not within steps of the reference; its rule is in
# SQNR against the float model instead: lowered-vs-float SQNR >= reference-vs-float SQNR minus
# this many dB on the whole output (tests, bench).
ISA_ADAPTED_MAX_SQNR_LOSS_DB = 0.5
# Per adapted node, at its own dot products (activation noise only, so much stricter than the
# whole-model figure): the 7-bit form costs 6-10 dB there by construction (4x the rounding
# noise, plus clipping); a node whose better form costs more than two bits' worth stays float.
ISA_ADAPTED_NODE_MAX_SQNR_LOSS_DB = 12.0


def sqnr_loss_db(reference_noise: float, added_noise: float) -> float:
    """dB of SQNR lost when independent ``added_noise`` (squared error) joins the reference's
    own ``reference_noise`` against the same signal: 10 log10((ref + added) / ref)."""
    if added_noise <= 0:
        return 0.0
    if reference_noise <= 0:
        return float("inf")
    return 10.0 * math.log10((reference_noise + added_noise) / reference_noise)


# Histogram statistics merged from several processes (pt2q.distributed, merge_observer_state_dicts)
# against one process calibrating on all the data, in steps of the single-process scale: both
# searches run on histograms of the same data over the same range, binned differently (each
# process re-bins when its own range grows, the merge re-bins onto the union range), so the
# chosen clipping range may move: both ends of the representable range
# [(quant_min - zero_point) * scale, (quant_max - zero_point) * scale] stay within one step.
MERGED_HISTOGRAM_VS_SINGLE_PROCESS_STEPS = 1


# Program level (whole models, e.g. the fuzzer's random graphs), where errors of many quantized
# tensors accumulate through float ops, so the rule is on the output's SQNR, not in steps:
# one 8-bit tensor quantized over its observed range keeps >= QUANTIZED_TENSOR_SQNR_DB (an ideal
# uniform 8-bit code gives ~48 dB; clipping by the histogram search, heavy tails and outputs
# that are small sums of large terms, whose noise does not cancel as the signal does, cost the
# rest: the fuzzer measured 19 dB on linear(20->1) with 3 quantized tensors); k independently
# quantized tensors add their noise powers (-10 log10 k dB); no program that quantizes what it
# should falls under PROGRAM_SQNR_FLOOR_DB (a wrong scale, zero point or channel axis does: it
# lands far below).
QUANTIZED_TENSOR_SQNR_DB = 20.0
PROGRAM_SQNR_FLOOR_DB = 8.0
# A lowered program against float may be a little worse than the reference program: kernels
# round a requantized value differently at ties (LOWERED_VS_REFERENCE_STEPS per kernel output),
# which adds at most another quantization noise of the same size, so its RMS error against float
# stays within this ratio of the reference's (plus float32 re-association noise).
LOWERED_PROGRAM_ERROR_RATIO = 1.5


def program_min_sqnr_db(quantized_tensors: int) -> float:
    """The lowest output SQNR (dB, against float) expected of a program that dequantizes that
    many distinct quantized tensors (activations and weights)."""
    if quantized_tensors <= 0:
        return 60.0  # nothing quantized: float up to re-association
    expected = QUANTIZED_TENSOR_SQNR_DB - 10.0 * math.log10(quantized_tensors)
    return max(PROGRAM_SQNR_FLOOR_DB, expected)


def lowered_within_program_tolerance(
    float_out: torch.Tensor, reference_out: torch.Tensor, lowered_out: torch.Tensor
) -> bool:
    """Whether a lowered program is no less accurate against float than the reference program,
    up to LOWERED_PROGRAM_ERROR_RATIO (and 1e-4 of the output's RMS for float re-association)."""
    f = float_out.double()
    ref_err = (reference_out.double() - f).pow(2).mean().sqrt()
    low_err = (lowered_out.double() - f).pow(2).mean().sqrt()
    slack = 1e-4 * f.pow(2).mean().sqrt()
    return bool(low_err <= LOWERED_PROGRAM_ERROR_RATIO * ref_err + slack)


def max_error_in_steps(
    actual: torch.Tensor, expected: torch.Tensor, scale: float | torch.Tensor
) -> float:
    """Largest elementwise |actual - expected| in units of ``scale`` (per-channel scales broadcast)."""
    diff = (actual.double() - expected.double()).abs() / torch.as_tensor(scale, dtype=torch.float64)
    return float(diff.max()) if diff.numel() else 0.0


def assert_within_steps(
    actual: torch.Tensor,
    expected: torch.Tensor,
    scale: float | torch.Tensor,
    steps: int,
    what: str,
) -> None:
    """Raise AssertionError naming ``what`` if any element is more than ``steps`` scales off."""
    if actual.shape != expected.shape:
        raise AssertionError(
            f"{what}: shape {tuple(actual.shape)} != expected {tuple(expected.shape)}"
        )
    err = max_error_in_steps(actual, expected, scale)
    # A tiny slack absorbs float64 division noise at exactly `steps` steps.
    if err > steps + 1e-6:
        raise AssertionError(f"{what}: max error {err:.4f} quantization steps > allowed {steps}")


# ---- LLM weight kernels (float outputs) -------------------------------------------------------
# aten._weight_int8pack_mm / _weight_int4pack_mm_for_cpu (x86) and the NEON f32-qc8w / f32-qc4w /
# qd8-f32-qc4w GEMMs against the reference program's dequantize -> aten.linear. Their outputs
# are float, so the "step" is the rounding unit of the dot product: eps(compute dtype) *
# sum_k |x[m, k]| * range[n, k], where range is the weight's full quantized range
# (qmax - qmin) * scale of element (n, k) (see `float_dot_step`). The kernels apply scales after
# or inside the k-sum, dequantize int4 as (u - 8) * scale + zero (zero = (8 - zp) * scale,
# rounded once) and accumulate in another order.
# float32 activations: fp32 rounding of each term and of the sum, a few units.
LLM_WEIGHT_KERNEL_FP32_STEPS = 4
# bfloat16 activations and scales (the fast path of torch's x86 kernels): x and the scales
# are rounded to 8 mantissa bits (half a bf16 eps each), the sum is fp32.
LLM_WEIGHT_KERNEL_BF16_STEPS = 2


def float_dot_step(
    x: torch.Tensor, weight_range: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The step of the LLM rule above for ``x`` (..., K) against weights whose per-element
    full range is ``weight_range`` (N, K): (..., N) = eps(dtype) * |x| @ weight_range.T."""
    mag = x.double().abs().reshape(-1, x.shape[-1]) @ weight_range.double().t()
    return (torch.finfo(dtype).eps * mag).reshape(*x.shape[:-1], weight_range.shape[0])


# int8 weight-only on VNNI / AMX with bf16 compute: each token row m is rounded to 16-bit fixed
# point (scale s_m = max_k |x[m, k]| / qmax, qmax = 32639) for aten._int_mm (exact int32 sums),
# so x[m, k] is off by at most s_m / 2 and the output by at most s_m / 2 * sum_k range[n, k],
# plus float32 rounding of the result: that sum is the step (`fixed16_dot_step`), and the
# lowering stays within one.
LLM_INT16_TOKENS_STEPS = 1


def fixed16_dot_step(x: torch.Tensor, weight_range: torch.Tensor, qmax: int) -> torch.Tensor:
    """The step of the int16-token rule above for ``x`` (..., K) against weights of full range
    ``weight_range`` (N, K): (..., N) = max_k |x| / qmax / 2 * sum_k range + fp32 dot step."""
    rows = x.double().abs().reshape(-1, x.shape[-1])
    half_step = rows.amax(-1, keepdim=True) / qmax / 2
    rounding = half_step * weight_range.double().sum(-1)
    return rounding.reshape(*x.shape[:-1], -1) + float_dot_step(x, weight_range)


# int4 group weights rebuilt as 16-bit fixed point (8da4w on VNNI / AMX over many tokens): each
# weight is rounded to a unit u_n = (largest group scale of row n) / 4079 before the exact
# integer GEMM, so it is off by at most u_n / 2 and the output by at most u_n / 2 * sum_k |x|
# (x the dequantized tokens), plus float32 rounding of the result: that sum is the step
# (`fixed16_weight_dot_step`), and the lowering stays within one.
LLM_INT16_WEIGHTS_STEPS = 1


def fixed16_weight_dot_step(
    x: torch.Tensor, weight_range: torch.Tensor, unit: torch.Tensor
) -> torch.Tensor:
    """The step of the int16-weight rule above for ``x`` (..., K), weights of full range
    ``weight_range`` (N, K) and units ``unit`` (N,): sum_k |x| * unit / 2 + fp32 dot step."""
    rows = x.double().abs().reshape(-1, x.shape[-1]).sum(-1, keepdim=True)
    rounding = rows * unit.double().reshape(1, -1) / 2
    return rounding.reshape(*x.shape[:-1], -1) + float_dot_step(x, weight_range)


__all__ += [
    "LLM_INT16_WEIGHTS_STEPS",
    "fixed16_weight_dot_step",
    "LLM_WEIGHT_KERNEL_FP32_STEPS",
    "LLM_WEIGHT_KERNEL_BF16_STEPS",
    "LLM_INT16_TOKENS_STEPS",
    "fixed16_dot_step",
    "float_dot_step",
]
