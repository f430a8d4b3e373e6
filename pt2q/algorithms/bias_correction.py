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
from torch.fx import GraphModule

from pt2q.algorithms.adaround import FLOAT_WEIGHT_KEY
from pt2q.algorithms.batches import Batch
from pt2q.algorithms.capture import record
from pt2q.algorithms.params import LINEAR, get_param, set_param
from pt2q.algorithms.weights import quantized_weights
from pt2q.convert.fold import ROUNDED_WEIGHT_KEY

__all__ = ["bias_correction"]


def _shift_of(
    op: object, delta: torch.Tensor, rest: tuple[object, ...], linear: bool
) -> Callable[[torch.Tensor], torch.Tensor]:
    """x -> mean over every position of op(x, delta) per output channel."""

    def reduce(x: torch.Tensor) -> torch.Tensor:
        y = op(x.float(), delta, None, *rest)  # type: ignore[operator]
        dims = tuple(range(y.dim() - 1)) if linear else (0, *range(2, y.dim()))
        return y.mean(dims)

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
        delta = qw.dequantize(ints) - w
        linear = qw.op.target in LINEAR
        reducers[qw.op.name] = _shift_of(qw.op.target, delta, tuple(qw.op.args[3:]), linear)
    kept = record(gm, batches, {k: (k, 0) for k in reducers}, reducers)
    for qw in todo:
        assert qw.bias is not None
        shift = torch.stack(kept[qw.op.name]).mean(0)
        set_param(gm, qw.bias, get_param(gm, qw.bias).detach() - shift)
    return [qw.op.name for qw in todo]
