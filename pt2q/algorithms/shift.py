"""Channel shifting: centre the normalization outputs the linears read, into their biases.

For the linears reading one affine ``layer_norm`` output ``X`` (q/k/v share theirs), per input
channel ``j`` the calibration median ``z_j`` of ``X_j`` moves into each linear's float bias::

    X' = X - z        b' = b + W z          (X' W^T + b' == X W^T + b)

``X - z`` is folded into the ``layer_norm``'s bias (or a copy of the ``layer_norm`` for the
linears, when a residual add reads it too: ``place_input_division``). Transformers' normalization
outputs carry a few channels with a large offset shared by every token; per-token (dynamic)
activation quantization spends its range on them, and a weight's rounding error times that
offset is an error every token shares. Measured on all-MiniLM-L6-v2 (real weights, docstring
sentences): the median token's range of the FFN inputs shrinks from 9.6-10.0 to 4.9-5.0 in
layers 2-4, of the q/k/v inputs from 5.3-6.6 to 3.8-4.5 (Outlier Suppression+, Wei et al.,
2023, shifts by the channel's range midpoint; the median serves per-token ranges better here:
midpoints widen them, 5.7 -> 15.9).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.fx import GraphModule, Node

from pt2q.algorithms.batches import Batch
from pt2q.algorithms.capture import record
from pt2q.algorithms.input_scaling import is_affine_layer_norm, linear_groups, place_input_division
from pt2q.algorithms.params import get_param, set_param, weight_bias

__all__ = ["ShiftedGroup", "shift"]

_ROWS_PER_BATCH = 64


@dataclass(frozen=True)
class ShiftedGroup:
    """Linears whose shared ``layer_norm`` input was centred, and where the shift went."""

    linears: tuple[str, ...]
    activation: str
    placed: str


def _shiftable(x: Node, linears: list[Node]) -> bool:
    has_bias = len(x.args) > 3 and isinstance(x.args[3], Node)
    return is_affine_layer_norm(x) and has_bias and all(weight_bias(n)[1] for n in linears)


def shift(gm: GraphModule, batches: Sequence[Batch]) -> list[ShiftedGroup]:
    """Centre every ``layer_norm`` output read by linears with constant biases, in place on
    ``gm`` (the caller's copy; parameters are replaced, never written into); returns the groups
    changed."""
    groups = {x: ls for x, ls in linear_groups(gm).items() if _shiftable(x, ls)}
    if not groups or not batches:
        return []

    def reduce(x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1]).float()
        step = max(1, rows.shape[0] // _ROWS_PER_BATCH)
        return rows[::step][:_ROWS_PER_BATCH].clone()

    kept = record(gm, batches, {x.name: (x.name, None) for x in groups}, reduce)
    done = []
    for x, linears in groups.items():
        z = torch.cat(kept[x.name]).median(0).values
        for lin in linears:
            w_node, b_node = weight_bias(lin)
            assert w_node is not None and b_node is not None
            w = get_param(gm, w_node).detach().float()
            set_param(gm, b_node, get_param(gm, b_node).detach() + w @ z)
        placed = place_input_division(gm, x, linears, torch.ones_like(z), shift=z)
        done.append(ShiftedGroup(tuple(n.name for n in linears), x.name, placed))
    gm.graph.lint()
    gm.recompile()
    return done
