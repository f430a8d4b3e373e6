"""Keep masking constants out of int8 ranges: find every tensor that can carry a fill value.

Attention masks, causal masks and padding fills put dtype-min/max, ``-inf`` or ``|x| >= 1e4``
values next to real data (``scores + where(mask, 0, -3.4e38)``). One such value in an int8 range
sets the scale: every real value then rounds to the zero point (softmax goes uniform) while the
per-node error still looks tiny, because the fill value dominates the signal. The class, not the
instance, is found on the graph, before any annotator runs::

    source   a fill literal in a value argument        where(m, x, -3.4e38), full(.., -inf),
             (the table ``FILL_VALUE_ARGS``)            masked_fill(x, m, -1e4), x * finfo.min
             a float constant (get_attr) holding one    torch.tensor(-1e9) lifted by export
    carrier  a ``MASK_PROPAGATING`` op (elementwise     add(scores, mask) -> view -> expand
             arithmetic, selection, re-layout) with a
             carrier or source input
    consumer any other op reading a carrier             softmax(add), linear(masked)

Sources, carriers and consumers are claimed with an empty annotation and a float reason
(``FLOAT_REASON_KEY``) naming the fill value and where it comes from, so no annotator quantizes
them and the coverage report says why. ``keep_masks_float`` runs first in
``PatternQuantizer.annotate`` unless ``set_mask_quantization(True)`` opts in (experts, tests).
Masks that arrive as model inputs already filled are not visible on the graph.
"""

from __future__ import annotations

import math
import numbers
from typing import TypeGuard

import torch
from torch.fx import GraphModule, Node

from pt2q.quantizers.annotation import FLOAT_REASON_KEY, is_annotated, write_annotation

__all__ = [
    "MASK_MAGNITUDE",
    "FILL_VALUE_ARGS",
    "MASK_PROPAGATING",
    "find_masks",
    "keep_masks_float",
]

aten = torch.ops.aten

# A value at least this large (or infinite) is a fill value, not data.
MASK_MAGNITUDE = 1e4

# op packet -> positions of its value arguments (a literal there may be a fill value).
FILL_VALUE_ARGS: dict[object, tuple[int, ...]] = {
    aten.full: (1,),  # full(size, fill)
    aten.full_like: (1,),  # full_like(x, fill)
    aten.new_full: (2,),  # x.new_full(size, fill)
    aten.fill: (1,),
    aten.fill_: (1,),
    aten.masked_fill: (2,),  # masked_fill(x, mask, fill)
    aten.masked_fill_: (2,),
    aten.where: (1, 2),  # where(cond, a, b)
    aten.scalar_tensor: (0,),
    aten.add: (0, 1),  # x + c
    aten.sub: (0, 1),
    aten.rsub: (0, 1),
    aten.mul: (0, 1),  # (1 - mask) * finfo.min
    aten.div: (0, 1),
    aten.clamp: (1, 2),
    aten.clamp_min: (1,),
    aten.clamp_max: (1,),
}

# Ops whose output can hold an input's values (elementwise arithmetic, selection, re-layout):
# a fill value flows through them. Everything else (softmax, linear, matmul, norms) ends it.
MASK_PROPAGATING: frozenset[object] = frozenset(
    {
        *FILL_VALUE_ARGS,
        aten.neg,
        aten.maximum,
        aten.minimum,
        aten.expand,
        aten.expand_as,
        aten.view,
        aten.reshape,
        aten._unsafe_view,
        aten.unsqueeze,
        aten.squeeze,
        aten.permute,
        aten.transpose,
        aten.t,
        aten.slice,
        aten.select,
        aten.narrow,
        aten.index,
        aten.index_select,
        aten.clone,
        aten.contiguous,
        aten._to_copy,
        aten.to,
        aten.type_as,
        aten.repeat,
        aten.cat,
        aten.concat,
        aten.stack,
        aten.flatten,
        aten.unflatten,
        aten.alias,
        aten.detach,
        aten.dropout,
        aten.lift_fresh_copy,
        aten.copy,
    }
)


def _packet(node: Node) -> object:
    return getattr(node.target, "overloadpacket", node.target)


def _is_fill(value: object) -> TypeGuard[numbers.Real]:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and (math.isinf(float(value)) or abs(float(value)) >= MASK_MAGNITUDE)
    )


def _literal_fill(node: Node) -> float | None:
    """The fill literal among ``node``'s value arguments, if any."""
    positions = FILL_VALUE_ARGS.get(_packet(node), ())
    values = [node.args[i] for i in positions if i < len(node.args)]
    values += [v for k, v in node.kwargs.items() if k in ("value", "fill_value", "other")]
    return next((float(v) for v in values if _is_fill(v)), None)


def _constant_fill(gm: GraphModule, node: Node) -> float | None:
    """The fill value held by a float constant that only feeds mask-propagating ops."""
    if not node.users or any(
        u.op != "call_function" or _packet(u) not in MASK_PROPAGATING for u in node.users
    ):
        return None
    owner: object = gm
    for part in str(node.target).split("."):
        owner = getattr(owner, part, None)
    if not isinstance(owner, torch.Tensor) or not owner.is_floating_point() or not owner.numel():
        return None
    big = owner.detach().abs().amax()
    if not (torch.isinf(big) or big >= MASK_MAGNITUDE):
        return None
    flat = owner.detach().reshape(-1)
    return float(flat[(flat.abs() >= MASK_MAGNITUDE) | torch.isinf(flat)][0])


def find_masks(gm: GraphModule) -> dict[Node, str]:
    """Every source and carrier of a fill value (graph order) -> a description of its origin."""
    found: dict[Node, str] = {}
    for node in gm.graph.nodes:
        fill = None
        if node.op == "get_attr":
            fill = _constant_fill(gm, node)
        elif node.op == "call_function":
            fill = _literal_fill(node)
        if fill is not None:
            found[node] = f"fill value {fill:.3g} from '{node.name}'"
            continue
        if node.op == "call_function" and _packet(node) in MASK_PROPAGATING:
            origin = next((found[i] for i in node.all_input_nodes if i in found), None)
            if origin is not None:
                found[node] = origin
    return found


def keep_masks_float(gm: GraphModule) -> int:
    """Claim every fill-value source, carrier and consumer (see module doc) with an empty
    annotation and a float reason; returns how many nodes were claimed."""
    masks = find_masks(gm)
    claimed = 0
    for node in gm.graph.nodes:
        if node.op != "call_function" or is_annotated(node):
            continue
        if node in masks:
            reason = f"carries a masking constant ({masks[node]})"
        else:
            origin = next((i for i in node.all_input_nodes if i in masks), None)
            if origin is None:
                continue
            reason = f"input '{origin.name}' carries a masking constant ({masks[origin]})"
        write_annotation(node)
        node.meta[FLOAT_REASON_KEY] = (
            f"{reason}: an int8 range would collapse the real values; "
            "set_mask_quantization(True) forces it"
        )
        claimed += 1
    return claimed
