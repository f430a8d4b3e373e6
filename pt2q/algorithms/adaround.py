"""Adaptive rounding (AdaRound) of quantized weights, layer by layer, in bounded time.

For each linear / conv2d (groups == 1) of a calibrated prepared model, with the weight
observer's grid (scale ``s``, zero point ``z``, ``[qmin, qmax]``), each weight rounds down or
up: ``Wq = s * (clamp(floor(W / s) + h + z, qmin, qmax) - z)`` with ``h`` in [0, 1] learned
(rectified sigmoid of ``V``) to minimise, on calibration inputs ``X`` (rows; conv: im2col
patches)::

    ||X Wq^T - X W^T||^2 / ||X W^T||^2  +  lam * sum(1 - |2h - 1| ** beta)

with ``beta`` annealed from 20 to 2 so ``h`` ends at 0 or 1 (Nagel et al., 2020). Starts at
nearest rounding (``h`` = fractional part); a layer whose learned rounding does not lower the
output error keeps nearest rounding.

Result, per layer: the chosen integers (``meta[ROUNDED_WEIGHT_KEY]`` on the weight's get_attr
node, which convert's weight folding uses as they are: ``pt2q/convert/fold.py``) and the float
weight replaced by their dequantized values (so the prepared model computes what the converted
one will). Time: ``seconds`` in total, shared over the layers in proportion to their size;
layers reached after the budget keep nearest rounding. Weights whose integers are already chosen
(by ``pt2q.algorithms.gptq``, which ``quantize`` tries first) are left as they are.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from torch.fx import GraphModule

from pt2q.algorithms.batches import Batch
from pt2q.algorithms.capture import record
from pt2q.algorithms.params import LINEAR, get_param, groups_of, im2col_rows, set_param
from pt2q.algorithms.weights import QuantizedWeight, quantized_weights
from pt2q.convert.fold import ROUNDED_WEIGHT_KEY

__all__ = ["adaround", "FLOAT_WEIGHT_KEY"]

# On a rounded weight's get_attr node: the float weight before rounding (bias correction
# measures the shift of the chosen integers against it).
FLOAT_WEIGHT_KEY = "pt2q_float_weight"

aten = torch.ops.aten
_ROWS = 1024  # calibration rows (positions) per layer
_ZETA, _GAMMA = 1.1, -0.1  # rectified sigmoid stretch
_LAMBDA = 0.01


def _rows_reducer(qw: QuantizedWeight, kernel: tuple[int, ...], per_batch: int) -> object:
    """x -> up to ``per_batch`` evenly spaced rows of the op's input matrix (linear: the
    activations; conv2d: its im2col patches)."""
    linear = qw.op.target in LINEAR

    def reduce(x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if linear:
            rows = x.reshape(-1, x.shape[-1])
        else:
            rows = im2col_rows(qw.op, x, kernel)
        step = max(1, rows.shape[0] // per_batch)
        return rows[::step][:per_batch].clone()

    return reduce


def _h(v: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.sigmoid(v) * (_ZETA - _GAMMA) + _GAMMA, 0, 1)


def _learn(
    qw: QuantizedWeight, w: torch.Tensor, x: torch.Tensor, seconds: float, iterations: int
) -> torch.Tensor | None:
    """The learned integers of ``w`` (flattened to (out, in)), or None if nearest is better.
    Runs ``iterations`` iterations or ``seconds``, whichever ends first; the schedule (20 %
    warm-up, then beta 20 -> 2) follows the progress in either."""
    s = qw.scale.reshape(qw.scale.shape[0], -1) if qw.scale.numel() > 1 else qw.scale.reshape(1, 1)
    z = qw.zero_point.reshape(s.shape)
    w2 = w.reshape(w.shape[0], -1)
    floor = torch.floor(w2 / s)
    rest = (w2 / s - floor).clamp(0.01, 0.99)
    v = (-torch.log((_ZETA - _GAMMA) / (rest - _GAMMA) - 1)).requires_grad_(True)
    target = x @ w2.t()
    norm = target.pow(2).mean().clamp(min=1e-12)

    def dequant(h: torch.Tensor) -> torch.Tensor:
        return s * (torch.clamp(floor + h + z, qmin, qmax) - z)

    qmin, qmax = qw.quant_min, qw.quant_max
    nearest = torch.clamp(torch.round(w2 / s) + z, qmin, qmax)
    nearest_err = float((x @ ((nearest - z) * s).t() - target).pow(2).mean() / norm)
    opt = torch.optim.Adam([v], lr=1e-2)
    start = time.perf_counter()
    for it in range(iterations):
        progress = max(it / iterations, (time.perf_counter() - start) / max(seconds, 1e-9))
        if progress >= 1.0:
            break
        h = _h(v)
        rec = (x @ dequant(h).t() - target).pow(2).mean() / norm
        if progress >= 0.2:
            beta = 20 - (20 - 2) * (progress - 0.2) / 0.8
            rec = rec + _LAMBDA * (1 - (2 * h - 1).abs().pow(beta)).mean()
        opt.zero_grad()
        rec.backward()
        opt.step()
    with torch.no_grad():
        chosen = torch.clamp(floor + (_h(v) >= 0.5).float() + z, qmin, qmax)
        err = float((x @ ((chosen - z) * s).t() - target).pow(2).mean() / norm)
    return chosen if err < nearest_err else None


def adaround(
    gm: GraphModule, batches: Sequence[Batch], seconds: float = 20.0, iterations: int = 400
) -> list[str]:
    """Adaptively round the weights of prepared ``gm`` (see the module doc) in place; returns
    the names of the ops whose rounding changed. Each layer runs at most ``iterations`` steps."""
    todo = []
    for qw in quantized_weights(gm):
        linear = qw.op.target in LINEAR
        w = get_param(gm, qw.weight).detach()
        conv2d = qw.op.target == aten.conv2d.default and groups_of(qw.op) == 1
        rounded = ROUNDED_WEIGHT_KEY in qw.weight.meta  # integers already chosen (gptq)
        if (linear or conv2d) and len(qw.weight.users) == 1 and not rounded:
            todo.append((qw, tuple(w.shape[2:])))
    if not todo:
        return []
    per_batch = max(1, _ROWS // max(1, len(batches)))
    reducers = {qw.op.name: _rows_reducer(qw, k, per_batch) for qw, k in todo}
    kept = record(gm, batches, {name: (name, 0) for name in reducers}, reducers)  # type: ignore[arg-type]
    sizes = [get_param(gm, qw.weight).numel() for qw, _ in todo]
    total = float(sum(sizes))
    start = time.perf_counter()
    changed = []
    for (qw, _), size in zip(todo, sizes, strict=True):
        spent = time.perf_counter() - start
        if spent >= seconds:
            break
        w = get_param(gm, qw.weight).detach().float()
        x = torch.cat(kept[qw.op.name])
        chosen = _learn(qw, w, x, seconds * size / total, iterations)
        if chosen is None:
            continue
        ints = chosen.reshape(w.shape)
        qw.weight.meta[ROUNDED_WEIGHT_KEY] = ints.to(qw.dtype)
        qw.weight.meta[FLOAT_WEIGHT_KEY] = w
        set_param(gm, qw.weight, qw.dequantize(ints))
        changed.append(qw.op.name)
    return changed
