"""Empirical bias correction: remove the mean output shift that weight quantization causes.

For each linear/conv ``y = op(x, W) + b`` of a calibrated prepared model, with the quantized
weight ``Wq`` (the weight observer's qparams, round half to even), the shift per output channel
is ``E[op(x, Wq - W)]`` over the calibration inputs ``x`` (float activations, every position);
after adaptive rounding ``Wq`` is its chosen integers and ``W`` the float weight before it.
The bias becomes ``b - shift``: a new float bias constant on the prepared model, which convert
folds as it folds any bias. Ops without a bias constant are skipped (reported).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch.fx import GraphModule

from pt2q.algorithms.adaround import FLOAT_WEIGHT_KEY
from pt2q.algorithms.batches import Batch
from pt2q.algorithms.capture import record
from pt2q.algorithms.params import LINEAR, conv_geometry, get_param, groups_of, set_param
from pt2q.algorithms.weights import QuantizedWeight, quantized_weights
from pt2q.convert.fold import ROUNDED_WEIGHT_KEY

__all__ = ["bias_correction"]

aten = torch.ops.aten


def _shift_of(qw: QuantizedWeight, delta: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """x -> mean over every position of op(x, delta) per output channel, (out,) float64.

    By linearity that is ``delta`` applied to the mean input row: for a linear the mean of
    ``x`` over its rows, for a conv2d the mean of its im2col patches (zero padding included),
    so the op itself never runs; other convs run ``op(x, delta)``."""
    op = qw.op
    d = delta.double()
    if op.target in LINEAR:
        return lambda x: d @ x.reshape(-1, x.shape[-1]).mean(0, dtype=torch.float64)
    if op.target == aten.conv2d.default:
        stride, padding, dilation = conv_geometry(op)
        g = groups_of(op)
        per_group = d.reshape(g, d.shape[0] // g, -1)  # (g, out/g, in/g * kh * kw)

        def patches_mean(x: torch.Tensor) -> torch.Tensor:
            cols = F.unfold(x.float(), d.shape[2:], dilation, padding, stride)  # (N, C*kh*kw, L)
            mean = cols.mean((0, 2), dtype=torch.float64).reshape(g, -1)
            return torch.einsum("goi,gi->go", per_group, mean).reshape(-1)

        return patches_mean
    rest = tuple(op.args[3:])

    def reduce(x: torch.Tensor) -> torch.Tensor:
        y = op.target(x.float(), delta, None, *rest)  # type: ignore[operator]
        return y.mean((0, *range(2, y.dim())), dtype=torch.float64)

    return reduce


def bias_correction(gm: GraphModule, batches: Sequence[Batch]) -> list[str]:
    """Correct the bias of every quantized linear/conv of prepared ``gm`` in place (new bias
    tensors; nothing written into shared ones). Returns the corrected op names."""
    todo = [qw for qw in quantized_weights(gm) if qw.bias is not None]
    if not todo:
        return []
    reducers = {}
    for qw in todo:
        w = qw.weight.meta.get(FLOAT_WEIGHT_KEY, get_param(gm, qw.weight).detach())
        chosen = qw.weight.meta.get(ROUNDED_WEIGHT_KEY)  # adaptive rounding's integers
        ints = qw.integers(w) if chosen is None else chosen.float()
        reducers[qw.op.name] = _shift_of(qw, qw.dequantize(ints) - w)
    kept = record(gm, batches, {k: (k, 0) for k in reducers}, reducers)
    for qw in todo:
        assert qw.bias is not None
        shift = torch.stack(kept[qw.op.name]).mean(0)
        bias = get_param(gm, qw.bias).detach()
        set_param(gm, qw.bias, bias - shift.to(bias.dtype))
    return [qw.op.name for qw in todo]
