"""Dynamic linear (XNNPACK ``get_symmetric_quantization_config(is_dynamic=True)``) onto
``pt2q_arm.linear_dynamic``.

The converted reference program computes, per call::

    s, zp = choose_qparams.tensor(x, -128, 127, eps, int8)      # one pair for the tensor
    xq = quantize_per_tensor.tensor(x, s, zp, ...); xd = dequantize_per_tensor.tensor(xq, ...)
    y = linear(xd, dequantize_per_channel(w_int8, ws, 0, ...), bias)   # float output

The lowering packs ``w_int8`` once (with its row sums, for the zero-point correction) and runs
the ``qd8-f32-gemm`` kernels, quantizing the activations **per row** (``PER_ROW``): each row of
``x`` gets its own (scale, zero point) by the same formula, so a row of small values is not
quantized with the step of the largest row. This is issue 5's "dynamic with per-row activation
quantization"; its numerics are those of the per-row reference (``per_row_reference``), not
bit-for-bit the per-tensor program. ``linear_dynamic(..., per_row=False)`` reproduces the
per-tensor program within fp32 rounding of the accumulator.
"""

from __future__ import annotations

import torch
from torch.fx import GraphModule, Node

from pt2q.lowering.arm.match import NoMatch, get_attr_value, weight_input
from pt2q.lowering.arm.ops import select_variant

__all__ = ["PER_ROW", "is_dynamic_input", "dynamic_linear", "per_row_reference"]

PER_ROW = True
_qd = torch.ops.quantized_decomposed


def is_dynamic_input(arg: object) -> bool:
    """``arg`` is ``dequantize_per_tensor.tensor(quantize_per_tensor.tensor(x, ...))`` whose
    qparams come from ``choose_qparams.tensor(x)``."""
    if not (isinstance(arg, Node) and arg.target == _qd.dequantize_per_tensor.tensor):
        return False
    q = arg.args[0]
    if not (isinstance(q, Node) and q.target == _qd.quantize_per_tensor.tensor):
        return False
    scale = q.args[1]
    return (
        isinstance(scale, Node)
        and isinstance(scale.args[0], Node)
        and scale.args[0].target == _qd.choose_qparams.tensor
    )


def dynamic_linear(gm: GraphModule, node: Node) -> tuple[Node, Node, str]:
    """Rewrite ``linear(dq(q(x, choose_qparams(x))), dq_per_channel(w), bias)`` into
    ``pt2q_arm.linear_dynamic``; returns (new node, new node, variant). Raises ``NoMatch``
    (with the reason) for a non-int8 / asymmetric / non-[-128, 127] activation or a weight the
    kernels cannot take."""
    from pt2q.lowering.arm.patterns import _arg, _const

    dq = node.args[0]
    q = dq.args[0]
    x, _scale, _zp, qmin, qmax, dtype = q.args[:6]
    choose = q.args[1].args[0]
    eps = float(choose.args[3])
    if dtype != torch.int8 or (qmin, qmax) != (-128, 127):
        raise NoMatch(
            f"{node.name}: dynamic activation must be int8 [-128, 127], found {dtype} "
            f"[{qmin}, {qmax}]"
        )
    wq = weight_input(gm, node.args[1], -1)
    n = int(wq.value.shape[0])
    v = select_variant("qd8-f32-gemm", n=n)
    name = f"{v.family}/{v.variant}"
    arm = torch.ops.pt2q_arm
    packed = _const(
        gm, node, f"{node.name}_packed", arm.pack_gemm_dynamic(wq.value, wq.scale.float(), name)
    )
    bias_node = _arg(node, 2, "bias", None)
    bias = None
    if isinstance(bias_node, Node):
        bias = _const(gm, node, f"{node.name}_bias", get_attr_value(gm, bias_node).float())
    with gm.graph.inserting_after(node):
        new = gm.graph.call_function(
            arm.linear_dynamic.default, (x, packed, bias, n, -128, 127, eps, PER_ROW, name)
        )
    new.meta = dict(node.meta)
    node.replace_all_uses_with(new)
    return new, new, name


def per_row_reference(
    x: torch.Tensor, w: torch.Tensor, w_scale: torch.Tensor, bias: torch.Tensor | None, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The float64 math the per-row kernel implements: each row of ``x`` (..., K) quantized with
    ``choose_qparams.tensor`` + ``quantize_per_tensor`` of that row, dequantized, times the
    dequantized weight, plus bias. Returns (output, per-row activation scale (M,))."""
    x2 = x.reshape(-1, x.shape[-1])
    rows, scales = [], []
    for r in x2:
        s, zp = _qd.choose_qparams.tensor(r, -128, 127, eps, torch.int8)
        rq = _qd.quantize_per_tensor.tensor(r, s, zp, -128, 127, torch.int8)
        rows.append((rq.double() - float(zp)) * float(s))
        scales.append(float(s))
    wd = w.double() * w_scale.double()[:, None]
    y = torch.stack(rows) @ wd.t()
    if bias is not None:
        y = y + bias.double()
    return y.reshape(*x.shape[:-1], w.shape[0]), torch.tensor(scales, dtype=torch.float64)
