"""SmoothQuant on an exported float graph: move activation outliers into the next linear's weights.

For the linears reading one activation ``X`` (q/k/v share theirs), per input channel ``j``::

    s_j = max|X_j| ** alpha / max_over_linears max|W[:, j]| ** (1 - alpha)
    X' = X / s        W' = W * s          (X' W'^T == X W^T)

``X / s`` is folded into the producer when ``X`` is a ``layer_norm`` with constant affine
parameters (its weight and bias are divided by ``s``). When that ``layer_norm`` has other readers
too (post-LN BERT: the residual add reads it), the linears get their own copy of it with the
divided parameters and the others keep the original (``"layer_norm copy"``: one more
normalization, but no inserted op a quantizer would quantize before the division; an int8
``mul`` input would carry the very outliers smoothing removes). Otherwise a ``mul(X, 1 / s)``
node is inserted in front of the linears, only with ``insert_mul=True`` (the function is the
same; the quantizer then observes the smoothed activation). By default only normalization outputs
are smoothed, where the SmoothQuant paper places it: measured on all-MiniLM-L6-v2 under
X86InductorQuantizer (sentence cosine, plain 0.9935), smoothing the layer_norm groups gives
0.9967 while adding the post-GELU and attention-context groups (inserted muls) drops it to 0.976. ``alpha`` is searched per group among ``alphas`` on calibration rows of
``X``: the candidate with the smallest output error of int8-simulated ``X' W'^T`` (per-tensor
affine activations, per-channel symmetric weights) wins, and a group where no candidate beats
leaving it alone is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.fx import GraphModule

from pt2q.algorithms.batches import Batch
from pt2q.algorithms.capture import record
from pt2q.algorithms.input_scaling import (
    is_affine_layer_norm,
    linear_groups,
    place_input_division,
)
from pt2q.algorithms.params import get_param, set_param, weight_bias

__all__ = ["SmoothedGroup", "smooth", "DEFAULT_ALPHAS"]

aten = torch.ops.aten
DEFAULT_ALPHAS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
_ROWS_PER_BATCH = 512


@dataclass(frozen=True)
class SmoothedGroup:
    """Linears smoothed together, the activation they read, the alpha chosen and how the
    division was placed (``"layer_norm"`` fold, ``"layer_norm copy"`` or inserted ``"mul"``)."""

    linears: tuple[str, ...]
    activation: str
    alpha: float
    placed: str


def _fake_quant_error(x: torch.Tensor, w: torch.Tensor, s: torch.Tensor) -> float:
    """||X W^T - q(X / s) q(W * s)^T||^2 with int8 per-tensor affine X, per-channel W."""
    xs, ws = x / s, w * s
    lo, hi = min(float(xs.min()), 0.0), max(float(xs.max()), 0.0)
    scale = max((hi - lo) / 255.0, 1e-12)
    zp = int(round(-128 - lo / scale))
    xq = (torch.clamp(torch.round(xs / scale) + zp, -128, 127) - zp) * scale
    w_scale = (ws.abs().amax(1, keepdim=True) / 127.0).clamp(min=1e-12)
    wq = torch.clamp(torch.round(ws / w_scale), -127, 127) * w_scale
    return float((x @ w.t() - xq @ wq.t()).pow(2).sum())


def _choose(
    rows: torch.Tensor, absmax: torch.Tensor, w: torch.Tensor, alphas: Sequence[float]
) -> tuple[float, torch.Tensor] | None:
    best_err = _fake_quant_error(rows, w, torch.ones_like(absmax))
    best: tuple[float, torch.Tensor] | None = None
    w_max = w.abs().amax(0).clamp(min=1e-8)  # (in,)
    a_max = absmax.clamp(min=1e-8)
    for alpha in alphas:
        s = (a_max.pow(alpha) / w_max.pow(1 - alpha)).clamp(1e-4, 1e4)
        err = _fake_quant_error(rows, w, s)
        if err < best_err:
            best_err, best = err, (alpha, s)
    return best


def smooth(
    gm: GraphModule,
    batches: Sequence[Batch],
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    insert_mul: bool = False,
) -> list[SmoothedGroup]:
    """SmoothQuant every linear group of ``gm`` reading a ``layer_norm`` (any group with
    ``insert_mul``) in place (``gm`` is the caller's own copy; parameters are replaced, never
    written into). Returns the groups changed."""
    groups = {x: ls for x, ls in linear_groups(gm).items() if insert_mul or is_affine_layer_norm(x)}
    if not groups:
        return []

    def reduce(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = x.reshape(-1, x.shape[-1]).float()
        step = max(1, rows.shape[0] // _ROWS_PER_BATCH)
        return rows.abs().amax(0), rows[::step][:_ROWS_PER_BATCH]

    kept = record(gm, batches, {x.name: (x.name, None) for x in groups}, reduce)
    done = []
    for x, linears in groups.items():
        absmax = torch.stack([a for a, _ in kept[x.name]]).amax(0)
        rows = torch.cat([r for _, r in kept[x.name]])
        weights = [get_param(gm, weight_bias(lin)[0]).detach() for lin in linears]  # type: ignore[arg-type]
        if any(w.dim() != 2 or w.shape[1] != absmax.numel() for w in weights):
            continue
        choice = _choose(rows, absmax, torch.cat(weights), alphas)
        if choice is None:
            continue
        alpha, s = choice
        for lin, w in zip(linears, weights, strict=True):
            set_param(gm, weight_bias(lin)[0], w * s)  # type: ignore[arg-type]
        done.append(
            SmoothedGroup(
                tuple(n.name for n in linears),
                x.name,
                alpha,
                place_input_division(gm, x, linears, s),
            )
        )
    gm.graph.lint()
    gm.recompile()
    return done
