"""LLM linears (int8wo, int4wo, 8da8w, 8da4w; ``pt2q.quantizers.llm_config``) onto the NEON LLM
GEMMs (``torch.ops.pt2q_arm_llm``, kernels and packing in ``pt2q.lowering.arm.llm``).

The per-token entries run first: the weight-only searches' float input ``x`` would also match a
``dequantize_per_token`` output. The per-token ``choose_qparams`` / ``quantize`` stay in the
program (exact); the kernel reads the int8 tokens with their qparams.
"""

from __future__ import annotations

import torch
from torch.fx import Node

from pt2q.lowering.arm.llm.ops import load_llm_ops
from pt2q.lowering.arm.llm.rewrite import LLM_FAMILY, check_llm, pack_llm
from pt2q.lowering.arm.ops import select_variant
from pt2q.lowering.arm.rewrite import ArmOptions, ArmPattern
from pt2q.lowering.llm.match import NotLlm, llm_linear
from pt2q.qdq.engine import NoMatch, Rewrite, Value
from pt2q.qdq.ops import qd

__all__ = ["PATTERNS"]

aten = torch.ops.aten


def _dq_w(w, ws, wz, wlo, whi, wdt, axis, gs, wout, grouped: bool):
    if grouped:
        return qd.dequantize_per_channel_group.default(w, ws, wz, wlo, whi, wdt, gs, wout)
    return qd.dequantize_per_channel.default(w, ws, wz, axis, wlo, whi, wdt)


def _per_token(grouped: bool):
    """``linear(dequantize_per_token(xq, s, z, ...), dq(w), b)`` (bindings ``xq, s, z``)."""

    def search(xq, s, z, xlo, xhi, xdt, xout, w, ws, wz, wlo, whi, wdt, axis, gs, wout, b):
        xf = qd.dequantize_per_token.default(xq, s, z, xlo, xhi, xdt, xout)
        return aten.linear.default(xf, _dq_w(w, ws, wz, wlo, whi, wdt, axis, gs, wout, grouped), b)

    return search


def _weight_only(grouped: bool):
    """``linear(x, dq(w), b)`` with a float ``x``."""

    def search(x, w, ws, wz, wlo, whi, wdt, axis, gs, wout, b):
        return aten.linear.default(x, _dq_w(w, ws, wz, wlo, whi, wdt, axis, gs, wout, grouped), b)

    return search


def _replace(r: Rewrite, options: ArmOptions) -> Value:
    del options  # the LLM kernels have no numerics switch
    anchor = r.match.anchor
    try:
        lin = llm_linear(r.gm, anchor)
        check_llm(lin)
    except NotLlm as e:
        raise NoMatch(str(e)) from None
    dynamic = "xq" in r.args
    if (lin.tokens is not None) != dynamic:
        raise NoMatch(f"{anchor.name}: per-token input, taken by the per-token entries")
    load_llm_ops()
    k = select_variant(LLM_FAMILY[lin.scheme], n=int(lin.weight.q.shape[0]))
    r.kernel = f"{k.family}/{k.variant}"
    packed = r.constant(
        f"_pt2q_arm_{anchor.name}_packed", pack_llm(lin.weight, lin.scheme, r.kernel)
    )
    n, ops = int(lin.weight.q.shape[0]), torch.ops.pt2q_arm_llm
    group = lin.weight.group_size if lin.weight.bits == 4 else 0
    bias = r["b"] if isinstance(r.node("b"), Node) else None
    if dynamic:
        return ops.linear_qd8.default(r["xq"], r["s"], r["z"], packed, bias, n, group, r.kernel)
    if lin.weight.bits == 8:
        return ops.linear_qc8w.default(r["x"], packed, bias, n, r.kernel)
    return ops.linear_qc4w.default(r["x"], packed, bias, n, group, r.kernel)


PATTERNS: list[ArmPattern] = [
    # dq_per_token(xq), dq_group(w) -> linear  ==>  pt2q_arm_llm.linear_qd8 (8da4w)
    ArmPattern("llm_8da_group", _per_token(grouped=True), _replace),
    # dq_per_token(xq), dq_channel(w) -> linear  ==>  pt2q_arm_llm.linear_qd8 (8da8w)
    ArmPattern("llm_8da_channel", _per_token(grouped=False), _replace),
    # x, dq_group(w) -> linear  ==>  pt2q_arm_llm.linear_qc4w (int4wo)
    ArmPattern("llm_wo_group", _weight_only(grouped=True), _replace),
    # x, dq_channel(w) -> linear  ==>  pt2q_arm_llm.linear_qc8w / qc4w (int8wo, per-channel int4)
    ArmPattern("llm_wo_channel", _weight_only(grouped=False), _replace),
]
