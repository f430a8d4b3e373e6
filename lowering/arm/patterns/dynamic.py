"""Dynamic linear (XNNPACK ``get_symmetric_quantization_config(is_dynamic=True)``) onto
``pt2q_arm.linear_dynamic``.

The converted reference program computes, per call::

    s, zp = choose_qparams.tensor(x, -128, 127, eps, int8)      # one pair for the tensor
    xq = quantize_per_tensor.tensor(x, s, zp, ...); xd = dequantize_per_tensor.tensor(xq, ...)
    y = linear(xd, dequantize_per_channel(w_int8, ws, 0, ...), bias)   # float output

The rewrite packs ``w_int8`` once (with its row sums, for the zero-point correction) and runs
the ``qd8-f32-gemm`` kernels. With ``ArmOptions.dynamic_per_row`` (the default) each row of
``x`` gets its own (scale, zero point) by the same formula, so a row of small values is not
quantized with the step of the largest row; its numerics are those of
``reference.per_row_reference``, not bit-for-bit the per-tensor program. With
``dynamic_per_row=False`` the kernel reproduces the per-tensor program within fp32 rounding of
the accumulator.
"""

from __future__ import annotations

import torch
from torch.fx import Node

from pt2q.lowering.arm.ops import select_variant
from pt2q.lowering.arm.rewrite import ArmOptions, ArmPattern, weight
from pt2q.qdq import searches
from pt2q.qdq.engine import NoMatch, Rewrite, Value

__all__ = ["PATTERNS"]


def _linear_dynamic(r: Rewrite, options: ArmOptions) -> Value:
    arm = torch.ops.pt2q_arm
    name = r.match.anchor.name
    if r["xdt"] != torch.int8 or (r["xlo"], r["xhi"]) != (-128, 127):
        raise NoMatch(
            f"{name}: dynamic activation must be int8 [-128, 127], found {r['xdt']} "
            f"[{r['xlo']}, {r['xhi']}]"
        )
    w, w_scale = weight(r)
    n = int(w.shape[0])
    v = select_variant("qd8-f32-gemm", n=n)
    r.kernel = f"{v.family}/{v.variant}"
    packed = r.constant(
        f"_pt2q_arm_{name}_packed", arm.pack_gemm_dynamic(w, w_scale.float(), r.kernel)
    )
    bias = None
    if isinstance(r.node("b"), Node):
        bias = r.constant(f"_pt2q_arm_{name}_bias", r.tensor("b").float())
    return arm.linear_dynamic.default(
        r["x"], packed, bias, n, -128, 127, float(r["eps"]), options.dynamic_per_row, r.kernel
    )


PATTERNS: list[ArmPattern] = [
    # x -> choose_qparams -> q -> dq, dq w -> linear (float out)  ==>  pt2q_arm.linear_dynamic
    ArmPattern("linear_dynamic_pc", searches.dynamic_linear(per_channel=True), _linear_dynamic),
    ArmPattern("linear_dynamic_pt", searches.dynamic_linear(per_channel=False), _linear_dynamic),
]
