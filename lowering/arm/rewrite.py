"""What every ARM pattern entry shares: the entry type, the numerics options of one lowering call,
and readers that turn a match's bindings into kernel arguments (or ``NoMatch`` with a reason).

A pattern module (``patterns/*.py``) imports from here and never from another pattern module,
so adding a file of entries cannot create an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.fx import Node

from pt2q.qdq.engine import NoMatch, Pattern, Rewrite, Value

__all__ = ["ArmOptions", "ArmPattern", "QParams", "act", "out", "weight", "gemm_epilogue", "pair"]


@dataclass(frozen=True)
class ArmOptions:
    """Switches of one ``lower_pt2e_quantized_to_arm`` call that change numerics.

    ``dynamic_per_row``: dynamic linears quantize each activation row with its own (scale, zero
    point) (closer to float than the reference program's one pair per tensor); False reproduces
    the reference program within fp32 rounding of the accumulator.
    """

    dynamic_per_row: bool = True


@dataclass(frozen=True)
class ArmPattern:
    """One table entry: a search function (``pt2q.qdq.searches`` or local) and its rewrite.

    ``replace(r, options)`` computes the ``torch.ops.pt2q_arm`` replacement on the bindings,
    packs weights through ``r.constant`` and sets ``r.kernel``; it raises ``NoMatch`` with the
    reason when the kernels cannot take the match.
    """

    name: str
    search: Callable[..., Any]
    replace: Callable[[Rewrite, ArmOptions], Value]

    def bind(self, options: ArmOptions) -> Pattern:
        """The engine pattern for one lowering call."""
        replace = self.replace
        return Pattern(self.name, self.search, lambda r: replace(r, options))


@dataclass(frozen=True)
class QParams:
    """Literal per-tensor qparams of an input or output (``qmin`` includes a fused ReLU)."""

    scale: float
    zp: int
    qmin: int
    qmax: int


def _int8(r: Rewrite, dtype_name: str, what: str) -> None:
    if r[dtype_name] != torch.int8:
        raise NoMatch(
            f"{r.match.anchor.name}: {what} is quantized to {r[dtype_name]}, the kernels take "
            "torch.int8"
        )


def act(r: Rewrite, p: str = "x") -> QParams:
    """The int8 activation bound as ``p, ps, pz, plo, phi, pdt`` (``as_`` for ``a``)."""
    s = "as_" if p == "a" else f"{p}s"
    _int8(r, f"{p}dt", f"input {p}")
    return QParams(float(r[s]), int(r[f"{p}z"]), int(r[f"{p}lo"]), int(r[f"{p}hi"]))


def out(r: Rewrite) -> QParams:
    """The int8 output quantize (``os, oz, olo, ohi, odt``); a fused ReLU (a post-op of the
    match) clamps at the zero point."""
    _int8(r, "odt", "output")
    zp, qmin = int(r["oz"]), int(r["olo"])
    relu = any(n.target == torch.ops.aten.relu.default for n in r.match.post_ops)
    return QParams(float(r["os"]), zp, max(qmin, zp) if relu else qmin, int(r["ohi"]))


def weight(r: Rewrite) -> tuple[torch.Tensor, torch.Tensor]:
    """The int8 constant weight (as stored) and its float64 scale per output channel (dim 0);
    zero points must be 0 (symmetric) and a per-channel axis 0."""
    name = r.match.anchor.name
    _int8(r, "wdt", "weight")
    w = r.tensor("w")
    if isinstance(r.node("ws"), Node):  # per channel: scale / zero point buffers
        if r["axis"] != 0:
            raise NoMatch(f"{name}: weight is per-channel on axis {r['axis']}, expected 0")
        scale, zp = r.tensor("ws").double(), r.tensor("wz")
    else:
        scale = torch.full((w.shape[0],), float(r["ws"]), dtype=torch.float64)
        zp = torch.tensor([int(r["wz"])])
    if bool((zp != 0).any()):
        raise NoMatch(f"{name}: weight has non-zero zero points, the kernels need symmetric")
    return w, scale


def gemm_epilogue(
    r: Rewrite, w2d: torch.Tensor, w_scale: torch.Tensor, x: QParams, y: QParams
) -> tuple[torch.Tensor, torch.Tensor]:
    """int32 bias with the input zero point folded in (``round(b / (sx*sw)) - zx * sum_k w``)
    and the fp32 requantization scales ``sx * sw / sy``, per output channel."""
    acc_scale = x.scale * w_scale  # float64, (N,)
    b = torch.zeros_like(acc_scale)
    bias = r.node("b")
    if isinstance(bias, Node):
        b = r.tensor("b").double()
    folded = torch.round(b / acc_scale) - x.zp * w2d.to(torch.int64).sum(dim=1).double()
    return folded.to(torch.int32), (acc_scale / y.scale).float()


def pair(v: object) -> list[int]:
    """A 2-D size argument (int or [h, w], possibly [] for "same as kernel") as [h, w]."""
    items: Sequence[Any] = list(v) if isinstance(v, (list, tuple)) else [v]
    return [int(items[0]), int(items[-1])] if items else []
