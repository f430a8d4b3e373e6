"""GPTQ: choose each linear's / conv's integers to minimise its output error.

For a linear ``y = x W^T`` (a conv2d with ``groups == 1``: its im2col patches times its weight
flattened to (N, Cin*kh*kw)), rounding each weight to nearest minimises ``|W - W_q|`` but not
``|x W^T - x W_q^T|`` on real inputs. GPTQ (Frantar et al., 2022)
quantizes the input columns one at a time and spreads each column's rounding error over the
columns not yet quantized, weighted by the inverse of ``H = X^T X`` (the inputs' second moment,
recorded on the calibration batches)::

    H += damp * mean(diag H) * I;   U = cholesky(H^-1, upper)
    for column i:  q_i = clamp(round(w_i / s_g(i) + z_g(i)));   e = (w_i - deq(q_i)) / U[i, i]
                   w_j -= e * U[i, j]   for j > i   (in blocks of ~128 columns, whole groups, lazily)

Each group's range is chosen when GPTQ reaches the group's first column, from the weights as
GPTQ has updated them so far (the paper's groups: the errors already spread into the group count
in its range), and written into the observer, so the qparams still come from the observer as in
the plain flow and the program's IR is exactly the plain flow's. With ``clip=True`` the range is
the group's ``[min, max]`` times the factor of ``range_factors`` that minimises its rounding error
weighted by ``diag H``: shrinking (1 .. 0.7) trades clipping for resolution, and on a signed
symmetric grid one step longer below zero than above (int4's ``[-8, 7]``, scale
``max|w| / 7.5``) the factor ``7.5 / 7`` puts a group's largest positive weight exactly on 7
instead of half a step off. GPTQ's integers are left on the weight's ``get_attr`` node
(``ROUNDED_WEIGHT_KEY``), which convert's weight folding uses as they are, and the weight
attribute is pointed at their dequantized values (so an unfolded convert quantizes back to the
same integers). A layer keeps GPTQ's integers and ranges only when its output error on the
recorded inputs, ``trace((W - W_q) H (W - W_q)^T)``, is lower than rounding's on the observed
ranges.

Weights observed per channel or per tensor (the int8 configs of every quantizer) keep the
observer's scales: GPTQ only chooses their integers, in blocks of 128 columns, with the same
keep-if-better rule per layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.affine.block_size import get_block_size
from pt2q.algorithms.adaround import FLOAT_WEIGHT_KEY
from pt2q.algorithms.batches import Batch
from pt2q.algorithms.capture import SecondMoment, record
from pt2q.algorithms.params import LINEAR, get_param, groups_of, im2col_rows, set_param
from pt2q.algorithms.weights import quantized_weights
from pt2q.convert.affine import ir_zero_point
from pt2q.convert.qdq import observer_of
from pt2q.qdq.meta import ROUNDED_WEIGHT_KEY

__all__ = [
    "GroupWeight", "channel_weights", "group_weights", "gptq_integers", "gptq", "range_factors"
]  # fmt: skip

aten = torch.ops.aten
_BLOCK = 128  # columns updated together (the lazy batch of the GPTQ paper)
_SHRINK = tuple(1.0 - 0.025 * i for i in range(13))  # range factors tried per group: 1 .. 0.7


@dataclass
class GroupWeight:
    """A linear (conv2d) whose constant weight, flattened to (N, K), is observed per group of
    ``group`` columns; per channel / per tensor: one group of K columns, ``observer`` None (its
    qparams stay as they are)."""

    op: Node
    weight: Node
    scale: torch.Tensor  # (N, K // group)
    zero_point: torch.Tensor  # (N, K // group), the IR's: q = round(w / s + z)
    quant_min: int
    quant_max: int
    dtype: torch.dtype
    group: int
    observer: Any  # the affine observer: its min_val / max_val are the ranges (or None)

    def _expand(self, t: torch.Tensor) -> torch.Tensor:
        return t.float().repeat_interleave(self.group, dim=1)

    def integers(self, w: torch.Tensor) -> torch.Tensor:
        """Round to nearest, as ``quantize_per_channel_group`` does (float tensor)."""
        q = w * (1.0 / self._expand(self.scale)) + self._expand(self.zero_point)
        return q.round().clamp(self.quant_min, self.quant_max)

    def dequantize(self, q: torch.Tensor) -> torch.Tensor:
        return (q - self._expand(self.zero_point)) * self._expand(self.scale)


def group_weights(gm: GraphModule) -> list[GroupWeight]:
    """Every linear of prepared ``gm`` whose weight is a ``get_attr`` constant behind a static
    affine observer with one block per (row, group of columns)."""
    found = []
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target not in LINEAR or len(node.args) < 2:
            continue
        obs_node = node.args[1]
        obs: Any = observer_of(gm, obs_node) if isinstance(obs_node, Node) else None
        if obs is None or obs.is_dynamic or getattr(obs, "granularity", None) is None:
            continue
        assert isinstance(obs_node, Node)
        weight = obs_node.args[0]
        if not isinstance(weight, Node) or weight.op != "get_attr":
            continue
        w = get_param(gm, weight).detach()
        block = get_block_size(tuple(w.shape), obs.granularity)
        if w.dim() != 2 or block[0] != 1 or not 1 < block[1] < w.shape[1]:
            continue  # per channel / per tensor: rounding per element is all there is to choose
        if not obs.has_observed:
            obs(w)
        gw = GroupWeight(node, weight, w, w, obs.quant_min, obs.quant_max, obs.dtype, block[1], obs)
        found.append(_with_qparams(gw))
    return found


def channel_weights(gm: GraphModule) -> list[GroupWeight]:
    """Every linear / conv2d (``groups == 1``) of prepared ``gm`` whose constant weight is
    observed per output channel or per tensor, as a ``GroupWeight`` of one group per row."""
    found = []
    for qw in quantized_weights(gm):
        conv2d = qw.op.target == aten.conv2d.default and groups_of(qw.op) == 1
        if qw.op.target not in LINEAR and not conv2d:
            continue
        w = get_param(gm, qw.weight)
        n, k = w.shape[0], w[0].numel()
        if qw.scale.numel() != 1 and qw.scale.shape[0] != n:
            continue  # channels on another axis: not rows of the flattened weight
        scale = qw.scale.reshape(-1, 1).expand(n, 1).float()
        zero_point = qw.zero_point.reshape(-1, 1).expand(n, 1).float()
        found.append(
            GroupWeight(
                qw.op, qw.weight, scale, zero_point, qw.quant_min, qw.quant_max, qw.dtype, k, None
            )
        )
    return found


def _qparams_for(gw: GroupWeight, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(scale, IR zero point), float, that ``gw``'s observer gives ranges ``lo`` / ``hi`` (any
    shape: its qparams are elementwise); the observer's own ranges are left as they were."""
    obs = gw.observer
    kept = obs.min_val, obs.max_val
    obs.min_val, obs.max_val = lo, hi
    try:
        scale, zp = obs.calculate_qparams()
    finally:
        obs.min_val, obs.max_val = kept
    return scale.float(), ir_zero_point(obs, scale, zp).float()


def _with_qparams(gw: GroupWeight) -> GroupWeight:
    """``gw`` with the IR scale / zero point its observer's current ranges give."""
    obs = gw.observer
    n, groups = obs.min_val.shape[0], obs.min_val.numel() // obs.min_val.shape[0]
    scale, zero_point = _qparams_for(gw, obs.min_val, obs.max_val)
    gw.scale, gw.zero_point = scale.reshape(n, groups), zero_point.reshape(n, groups)
    gw.quant_min, gw.quant_max, gw.group = int(obs.quant_min), int(obs.quant_max), int(gw.group)
    return gw


def range_factors(gw: GroupWeight) -> tuple[float, ...]:
    """The range factors tried per group (see the module doc): ``_SHRINK``, led on a signed grid
    longer below zero than above by the one that maps a symmetric range's top onto ``qmax``."""
    lo, hi = gw.quant_min, gw.quant_max
    top = (hi - lo) / (2 * hi) if lo < 0 < hi else 1.0
    return ((top,) if top > 1.0 else ()) + _SHRINK


def _fit_group_range(
    gw: GroupWeight, cols: torch.Tensor, importance: torch.Tensor, j: int, factors: Sequence[float]
) -> None:
    """Set group ``j``'s range in the observer to ``[min, max]`` of ``cols`` (N, group) times the
    factor of ``factors`` (per row) with the smallest ``importance``-weighted rounding error, and
    refresh ``gw``'s qparams from it."""
    f = torch.tensor(factors, dtype=torch.float32)[:, None]
    lo = cols.min(1).values.clamp(max=0) * f  # (factors, N): every candidate range at once
    hi = cols.max(1).values.clamp(min=0) * f
    s, z = (t[..., None] for t in _qparams_for(gw, lo, hi))
    q = (cols * (1.0 / s) + z).round().clamp(gw.quant_min, gw.quant_max)
    best = ((q - z) * s - cols).pow(2).mul(importance).sum(-1).argmin(0)  # first of equals
    rows = torch.arange(cols.shape[0])
    obs = gw.observer
    shape = obs.min_val.shape
    lo_all, hi_all = (t.reshape(rows.numel(), -1).clone() for t in (obs.min_val, obs.max_val))
    lo_all[:, j], hi_all[:, j] = lo[best, rows], hi[best, rows]
    obs.min_val, obs.max_val = lo_all.reshape(shape), hi_all.reshape(shape)
    _with_qparams(gw)


def _output_error(gw: GroupWeight, w: torch.Tensor, q: torch.Tensor, h: torch.Tensor) -> float:
    d = (w - gw.dequantize(q)).double()
    return float(((d @ h) * d).sum())


def gptq_integers(
    gw: GroupWeight,
    w: torch.Tensor,
    h: torch.Tensor,
    damp: float = 0.01,
    factors: Sequence[float] | None = None,
) -> torch.Tensor:
    """GPTQ's integers (float tensor, weight-shaped) for weight ``w`` (N, K) with input second
    moment ``h`` (K, K); see the module doc. With ``factors``, each group's range is chosen from
    the updated weights when GPTQ reaches it (written into the observer); with None the
    observer's current ranges are kept."""
    w = w.double().clone()
    h = h.double().clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1.0
    h += damp * torch.mean(torch.diag(h)) * torch.eye(h.shape[0], dtype=h.dtype)
    u = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    importance = torch.diag(h).float()

    def grid() -> tuple[torch.Tensor, ...]:
        zero = gw._expand(gw.zero_point)  # float32 inverse scale: the integers as integers() rounds
        return 1.0 / gw._expand(gw.scale), zero, gw._expand(gw.scale).double(), zero.double()

    inv_scale, zero, scale, zero64 = grid()
    q = torch.zeros_like(w)
    k = w.shape[1]
    # fitted ranges: whole groups per block, so a range sees every update
    block = max(1, _BLOCK // gw.group) * gw.group if factors is not None else _BLOCK
    for start in range(0, k, block):
        end = min(start + block, k)
        errors = torch.zeros(w.shape[0], end - start, dtype=w.dtype)
        for i in range(start, end):
            if factors is not None and i % gw.group == 0:
                cols = slice(i, i + gw.group)
                _fit_group_range(gw, w[:, cols].float(), importance[cols], i // gw.group, factors)
                inv_scale, zero, scale, zero64 = grid()
            col = w[:, i]
            qi = (col.float() * inv_scale[:, i] + zero[:, i]).round()
            qi = qi.clamp(gw.quant_min, gw.quant_max).double()
            q[:, i] = qi
            err = (col - (qi - zero64[:, i]) * scale[:, i]) / u[i, i]
            w[:, i + 1 : end] -= err[:, None] * u[i, i + 1 : end][None, :]
            errors[:, i - start] = err
        w[:, end:] -= errors @ u[start:end, end:]
    return q.float()


class _PatchMoment(SecondMoment):
    """``E[p^T p]`` over the im2col patches ``p`` of a conv2d's input (rows: positions)."""

    def __init__(self, op: Node, kernel: tuple[int, ...]) -> None:
        super().__init__()
        self.op, self.kernel = op, kernel

    def __call__(self, x: torch.Tensor) -> None:
        super().__call__(im2col_rows(self.op, x.float(), self.kernel))


def gptq(
    gm: GraphModule, batches: Sequence[Batch], damp: float = 0.01, clip: bool = True
) -> list[str]:
    """Choose the integers of every linear / conv2d weight of prepared, calibrated ``gm`` by
    GPTQ (see the module doc), in place on ``gm`` (a prepared copy; the user's tensors are never
    written); returns the names of the ops whose integers changed."""
    todo = [gw for gw in group_weights(gm) + channel_weights(gm) if len(gw.weight.users) == 1]
    todo = [gw for gw in todo if ROUNDED_WEIGHT_KEY not in gw.weight.meta]
    if not todo or not batches:
        return []
    moments = {
        gw.op.name: SecondMoment()
        if gw.op.target in LINEAR
        else _PatchMoment(gw.op, tuple(get_param(gm, gw.weight).shape[2:]))
        for gw in todo
    }
    record(gm, batches, {name: (name, 0) for name in moments}, dict(moments))
    changed = []
    for gw in todo:
        h = moments.pop(gw.op.name).mean()
        w = get_param(gm, gw.weight).detach().float()
        shape = w.shape
        w = w.reshape(shape[0], -1)
        nearest = _output_error(gw, w, gw.integers(w), h)
        if gw.observer is None:
            chosen = gptq_integers(gw, w, h, damp)
        else:
            lo, hi = gw.observer.min_val, gw.observer.max_val
            chosen = gptq_integers(gw, w, h, damp, range_factors(gw) if clip else (1.0,))
        if _output_error(gw, w, chosen, h) >= nearest:
            if gw.observer is not None:
                gw.observer.min_val, gw.observer.max_val = lo, hi
                _with_qparams(gw)
            continue
        gw.weight.meta[ROUNDED_WEIGHT_KEY] = chosen.reshape(shape).to(gw.dtype)
        gw.weight.meta[FLOAT_WEIGHT_KEY] = w.reshape(shape)
        set_param(gm, gw.weight, gw.dequantize(chosen).reshape(shape))
        changed.append(gw.op.name)
    return changed
