"""Cross-layer equalization (CLE) with bias absorption, on an exported float graph.

Pairs ``A -> act -> B`` of conv/linear ops (depthwise and grouped convs included) where ``act``
is relu, relu6 / hardtanh(0, M) or nothing (an eval dropout counts as nothing), ``A``'s output
feeds only ``act`` and ``act`` only ``B``. Per channel ``i`` of ``A``'s output::

    r1 = max |W_A[i, ...]|        r2 = max |W_B[:, i, ...]|      s = sqrt(r1 / r2)
    W_A[i] /= s,  b_A[i] /= s,    W_B[:, i] *= s                   (relu(x / s) * s == relu(x))

so both weights get the per-channel range ``sqrt(r1 * r2)`` and per-tensor weight quantization
stops wasting its levels on one channel. ``hardtanh(x, 0, M)`` is rewritten as
``minimum(relu(x), M / s)`` (a per-channel bound, exactly the same function). Passes repeat
``iterations`` times so chains of several layers settle.

Bias absorption (after equalization, from calibration statistics): when ``A``'s output channel
``i`` never goes below ``c_i > 0`` on the calibration data, ``relu`` passes it unchanged, so
``c`` moves from ``b_A`` into ``b_B`` (``b_A -= c``, ``b_B += W_B summed over its kernel @ c``).
Only where that is exact: ``act`` is relu (or nothing) and ``B`` is a linear or an unpadded conv.
``c`` is ``min(observed min, mean - 3 std)`` per channel so rare smaller values stay positive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.fx import GraphModule, Node

from pt2q.algorithms.batches import Batch
from pt2q.algorithms.capture import record
from pt2q.algorithms.params import (
    CONV,
    LINEAR,
    WEIGHTED,
    get_param,
    groups_of,
    set_param,
    weight_bias,
)

__all__ = ["EqualizedPair", "find_pairs", "equalize"]

aten = torch.ops.aten
_RELU = frozenset({aten.relu.default, aten.relu_.default})
_HARDTANH = frozenset(
    {aten.hardtanh.default, aten.hardtanh_.default, aten.relu6.default, aten.relu6_.default}
)
# Between A and B these commute with a per-channel scale (zero padding included).
_IDENTITY = frozenset(
    {aten.dropout.default, aten.clone.default, aten.pad.default, aten.constant_pad_nd.default}
)
_S_MIN, _S_MAX = 1e-4, 1e4


@dataclass(frozen=True)
class EqualizedPair:
    """``first -> act -> second`` by node names; ``act`` is None for a direct pair."""

    first: str
    act: str | None
    second: str


def _single_user(node: Node) -> Node | None:
    return next(iter(node.users)) if len(node.users) == 1 else None


def _hardtanh_bounds(node: Node) -> tuple[float, float]:
    if node.target in (aten.relu6.default, aten.relu6_.default):
        return 0.0, 6.0
    lo = node.args[1] if len(node.args) > 1 else -1.0
    hi = node.args[2] if len(node.args) > 2 else 1.0
    assert isinstance(lo, (int, float)) and isinstance(hi, (int, float)), (lo, hi)
    return float(lo), float(hi)


def find_pairs(gm: GraphModule) -> list[tuple[Node, Node | None, Node]]:
    """Every equalizable ``(A, act, B)`` of ``gm`` in graph order (see the module doc)."""
    pairs = []
    for a in gm.graph.nodes:
        if a.op != "call_function" or a.target not in WEIGHTED or weight_bias(a)[0] is None:
            continue
        if len(weight_bias(a)[0].users) != 1:  # type: ignore[union-attr]
            continue
        act: Node | None = None
        nxt = _single_user(a)
        while nxt is not None and nxt.target in _IDENTITY and _zero_pad(nxt):
            nxt = _single_user(nxt)
        if nxt is not None and (
            nxt.target in _RELU or (nxt.target in _HARDTANH and _hardtanh_bounds(nxt)[0] == 0.0)
        ):
            act, nxt = nxt, _single_user(nxt)
            while nxt is not None and nxt.target in _IDENTITY and _zero_pad(nxt):
                nxt = _single_user(nxt)
        if nxt is None or nxt.target not in WEIGHTED or weight_bias(nxt)[0] is None:
            continue
        w_b = weight_bias(nxt)[0]
        assert w_b is not None
        if len(w_b.users) != 1 or not _feeds_input(nxt, a, act):
            continue
        pairs.append((a, act, nxt))
    return pairs


def _zero_pad(node: Node) -> bool:
    """A pad / constant_pad_nd with value 0 (or any other identity-like op)."""
    if node.target == aten.pad.default:
        mode = node.args[2] if len(node.args) > 2 else node.kwargs.get("mode", "constant")
        value = node.args[3] if len(node.args) > 3 else node.kwargs.get("value", None)
        return mode == "constant" and not value
    if node.target == aten.constant_pad_nd.default:
        return not (node.args[2] if len(node.args) > 2 else 0)
    return True


def _feeds_input(b: Node, a: Node, act: Node | None) -> bool:
    """Whether B's activation input (arg 0) is A's chain and not its weight/bias."""
    x = b.args[0]
    while isinstance(x, Node) and x is not a and x is not act and x.target in _IDENTITY:
        x = x.args[0]
    return x is (act if act is not None else a)


def _input_view(w: torch.Tensor, groups: int, is_linear: bool) -> torch.Tensor:
    """B's weight as (groups, out per group, in per group, rest) so input channel
    ``g * in_per_group + j`` is ``[g, :, j]``."""
    if is_linear:
        return w.reshape(1, w.shape[0], w.shape[1], 1)
    out, in_per_group = w.shape[0], w.shape[1]
    return w.reshape(groups, out // groups, in_per_group, -1)


def _scale_inputs(w: torch.Tensor, s: torch.Tensor, groups: int, is_linear: bool) -> torch.Tensor:
    view = _input_view(w, groups, is_linear)
    g, _, j, _ = view.shape
    return (view * s.reshape(g, 1, j, 1)).reshape(w.shape)


def _input_ranges(w: torch.Tensor, groups: int, is_linear: bool) -> torch.Tensor:
    view = _input_view(w, groups, is_linear).abs()
    return view.amax(dim=(1, 3)).reshape(-1)  # (in channels,)


def _pair_scale(wa: torch.Tensor, wb: torch.Tensor, b: Node) -> torch.Tensor | None:
    """The per-channel ``s`` equalizing ``wa`` (A's weight) with ``wb`` (B's), or None."""
    r1 = wa.abs().reshape(wa.shape[0], -1).amax(1)
    r2 = _input_ranges(wb, groups_of(b), b.target in LINEAR)
    if r1.shape != r2.shape:
        return None  # channel counts differ (a reshape in between): leave the pair alone
    s = torch.where((r1 > 0) & (r2 > 0), (r1 / r2).sqrt(), torch.ones_like(r1))
    return s.clamp(_S_MIN, _S_MAX)


def _channel_shape(a: Node) -> tuple[int, ...]:
    """Broadcast shape of a per-channel tensor on A's output: (C,) for linear, (C, 1, ...)
    for conv."""
    val = a.meta.get("val")
    ndim = val.dim() if isinstance(val, torch.Tensor) else 2
    return (-1,) if a.target in LINEAR else (-1,) + (1,) * max(ndim - 2, 0)


def _bound_per_channel(gm: GraphModule, act: Node, s: torch.Tensor, a: Node) -> None:
    """``hardtanh(x, 0, M)`` -> ``minimum(relu(x), M / s)``: the same function once A's
    channel ``i`` is divided by ``s_i``."""
    graph = gm.graph
    name = f"_pt2q_cle_bound_{act.name}"
    gm.register_buffer(name, (_hardtanh_bounds(act)[1] / s).reshape(_channel_shape(a)))
    with graph.inserting_before(act):
        relu = graph.call_function(aten.relu.default, (act.args[0],))
        const = graph.get_attr(name)
        minimum = graph.call_function(aten.minimum.default, (relu, const))
    relu.meta.update(act.meta)
    minimum.meta.update(act.meta)
    act.replace_all_uses_with(minimum)
    graph.erase_node(act)


def _absorb_biases(
    gm: GraphModule, pairs: list[tuple[Node, Node | None, Node]], batches: Sequence[Batch]
) -> int:
    """Move the always-positive part of A's output into B's bias (see the module doc)."""
    todo = []
    for a, act, b in pairs:
        if act is not None and act.target not in _RELU:
            continue
        _, ba_node = weight_bias(a)
        _, bb_node = weight_bias(b)
        if ba_node is None or bb_node is None or b.args[0] is not (act or a):
            continue  # no bias to move, or a pad / dropout in between
        if b.target in CONV:
            padding = b.args[4] if len(b.args) > 4 else b.kwargs.get("padding", 0)
            if any(p != 0 for p in (padding if isinstance(padding, (list, tuple)) else [padding])):
                continue
        todo.append((a, b, ba_node, bb_node))
    if not todo:
        return 0

    def stats(channel_last: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        def reduce(x: torch.Tensor) -> torch.Tensor:
            c = x.shape[-1] if channel_last else x.shape[1]
            y = x.reshape(-1, c).t() if channel_last else x.movedim(1, 0).reshape(c, -1)
            return torch.stack([y.amin(1), y.mean(1), y.std(1)])  # (3, C)

        return reduce

    kept: dict[str, list[torch.Tensor]] = {}
    for channel_last in (True, False):
        watch: dict[str, tuple[str, int | None]] = {
            a.name: (a.name, None) for a, *_ in todo if (a.target in LINEAR) == channel_last
        }
        if watch:
            kept.update(record(gm, batches, watch, stats(channel_last)))
    for a, b, ba_node, bb_node in todo:
        st = torch.stack(kept[a.name])  # (batches, 3, C)
        lo = st[:, 0].amin(0)
        c = torch.minimum(lo, st[:, 1].mean(0) - 3 * st[:, 2].mean(0)).clamp(min=0)
        if not bool((c > 0).any()):
            continue
        wb = get_param(gm, weight_bias(b)[0]).detach()  # type: ignore[arg-type]
        per_input = _input_view(wb, groups_of(b), b.target in LINEAR)  # (g, o/g, i/g, k)
        g, opg, ipg, _ = per_input.shape
        summed = per_input.sum(3)  # (g, o/g, i/g)
        shift = torch.einsum("goi,gi->go", summed, c.reshape(g, ipg)).reshape(-1)
        set_param(gm, ba_node, get_param(gm, ba_node).detach() - c)
        set_param(gm, bb_node, get_param(gm, bb_node).detach() + shift)
    return len(todo)


def equalize(
    gm: GraphModule,
    batches: Sequence[Batch] = (),
    iterations: int = 4,
    absorb_bias: bool = True,
) -> list[EqualizedPair]:
    """Equalize every pair of ``gm`` in place (``gm`` must be the caller's own copy: its
    parameters are replaced, never written into); then absorb biases from ``batches``.
    Returns the pairs. The float function is unchanged up to fp32 rounding."""
    pairs = find_pairs(gm)
    value: dict[Node, torch.Tensor] = {}
    for a, _, b in pairs:
        for n in (*weight_bias(a), weight_bias(b)[0]):
            if n is not None:
                value[n] = get_param(gm, n).detach()
    total = [torch.ones(1) for _ in pairs]
    for _ in range(iterations):
        for k, (a, _, b) in enumerate(pairs):
            wa_node, ba_node = weight_bias(a)
            wb_node = weight_bias(b)[0]
            assert wa_node is not None and wb_node is not None
            s = _pair_scale(value[wa_node], value[wb_node], b)
            if s is None:
                continue
            value[wa_node] = value[wa_node] / s.reshape((-1,) + (1,) * (value[wa_node].dim() - 1))
            if ba_node is not None:
                value[ba_node] = value[ba_node] / s
            value[wb_node] = _scale_inputs(value[wb_node], s, groups_of(b), b.target in LINEAR)
            total[k] = total[k] * s
    for node, tensor in value.items():
        set_param(gm, node, tensor)
    for k, (a, act, _) in enumerate(pairs):
        if act is not None and act.target in _HARDTANH and total[k].numel() > 1:
            _bound_per_channel(gm, act, total[k], a)
    gm.graph.lint()
    gm.recompile()
    if absorb_bias and batches:
        _absorb_biases(gm, pairs, batches)
    return [EqualizedPair(a.name, None if act is None else act.name, b.name) for a, act, b in pairs]
