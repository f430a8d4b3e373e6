"""Full-range uint8 activations on CPUs without VNNI: the 7-bit or the saturating form, by error.

Without VNNI, oneDNN's u8*s8 kernels add pairs of products in a saturating int16
(``vpmaddubsw``, see ``isa.py``): exact for activations in [0, 127], possibly saturating for
[0, 255]. For each group of activation quantizes that share qparams (a quantize and the ones
that int8 pass-through ops, pools / cat / reshape, tie to it) feeding a conv / linear, the
lowering measures on the example inputs, per consumer, the error against the reference op of

* the **saturating** form: the [0, 255] activations through a bit-exact model of the non-VNNI
  kernel's arithmetic (``vpmaddubsw``: neighbouring u8*s8 products summed into a saturating
  int16, in oneDNN's reduction order), so the choice depends on the ISA facts, not on the
  machine that lowers (a VNNI build machine can lower for an AVX2 target), and
* the **7-bit** form: the activation re-quantized at lowering to [0, 127] with scale x2 and
  zero point ``round_half_even(zp / 2)``, which oneDNN computes exactly,

and keeps the form whose added noise costs less of the reference's own SQNR at these dot
products (the 7-bit form always costs ~6 dB there: one bit of activation resolution; the
saturating one costs nothing until pairs saturate); when both cost more than
``pt2q.tolerances.ISA_ADAPTED_NODE_MAX_SQNR_LOSS_DB`` the consumers stay float (they read the
float activation; the report gives both measured losses). Noise is summed over the group's consumers, on at
most ``_MAX_ROWS`` sampled output positions each. With VNNI / AMX nothing changes (the exact full-range path). The reference program
itself is never changed: the rewrite edits the lowering's private copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.fx import GraphModule, Interpreter, Node

from pt2q.lowering.x86.isa import CpuInt8Isa, max_exact_activation_qmax
from pt2q.lowering.x86.patterns import (
    COMPUTE_OPS,
    PASS_THROUGH_OPS,
    conv_params,
    kernel_family,
)
from pt2q.qdq.engine import constant_value
from pt2q.qdq.ops import qd
from pt2q.qdq.views import OutQ, act_q, out_q, weight_q
from pt2q.tolerances import ISA_ADAPTED_NODE_MAX_SQNR_LOSS_DB, sqnr_loss_db

__all__ = [
    "FORM_EXACT",
    "FORM_7BIT",
    "FORM_SATURATING",
    "FORM_FLOAT",
    "ActivationChoice",
    "choose_activation_forms",
    "apply_forms",
    "fold_float_weight",
    "record_values",
]

FORM_EXACT = "exact"
FORM_7BIT = "7-bit"
FORM_SATURATING = "saturating"
FORM_FLOAT = "float"


@dataclass(frozen=True)
class ActivationChoice:
    """The form chosen for one group of activation quantizes, and the measurement behind it."""

    quantizes: tuple[str, ...]  # names of the quantize nodes of the group
    consumers: tuple[str, ...]  # conv / linear nodes reading the group's activations
    form: str  # FORM_EXACT, FORM_7BIT, FORM_SATURATING or FORM_FLOAT
    reason: str
    saturating_loss_db: float = 0.0  # SQNR lost vs the reference with the saturating kernel
    seven_bit_loss_db: float = 0.0  # SQNR lost vs the reference with the 7-bit form


def _static_q(n: Node) -> OutQ | None:
    """``n`` read as a quantize with literal (static) qparams, or None."""
    q = out_q(n)
    return q if q is not None and q.is_static else None


def _is_static_dq(n: Node) -> bool:
    a = act_q(n)
    return a is not None and a.is_static


def _qparams(q: Node) -> tuple[object, ...] | None:
    v = _static_q(q)
    return None if v is None else (v.scale, v.zero_point, v.qmin, v.qmax, v.dtype)


def _qmax(q: Node) -> int:
    v = _static_q(q)
    assert v is not None  # groups hold static quantizes only
    return v.qmax


def _groups(gm: GraphModule) -> list[list[Node]]:
    """Literal uint8 activation quantizes, grouped when a pass-through op ties their qparams."""
    parent: dict[Node, Node] = {}

    def find(n: Node) -> Node:
        while parent.setdefault(n, n) is not n:
            n = parent[n]
        return n

    quantizes = [n for n in gm.graph.nodes if (v := _static_q(n)) and v.dtype == torch.uint8]
    for q in quantizes:
        find(q)
        for dq in q.users:
            for op in dq.users if _is_static_dq(dq) else ():
                if op.target not in PASS_THROUGH_OPS:
                    continue
                for q2 in op.users:
                    if _qparams(q2) == _qparams(q):
                        parent[find(q2)] = find(q)
    groups: dict[Node, list[Node]] = {}
    for q in quantizes:
        groups.setdefault(find(q), []).append(q)
    return list(groups.values())


def _consumers(group: list[Node]) -> list[Node]:
    return [
        op
        for q in group
        for dq in q.users
        if _is_static_dq(dq)
        for op in dq.users
        if op.target in COMPUTE_OPS and op.args[0] is dq
    ]


def record_values(
    gm: GraphModule, example_inputs: tuple[object, ...], wanted: set[Node]
) -> dict[Node, object]:
    """Run ``gm`` once on ``example_inputs``; the values of the ``wanted`` nodes."""
    recorder = _Recorder(gm, wanted)
    with torch.no_grad():
        recorder.run(*example_inputs)
    return recorder.values


class _Recorder(Interpreter):
    """Runs the program once and keeps the values of ``wanted`` nodes."""

    def __init__(self, gm: GraphModule, wanted: set[Node]) -> None:
        super().__init__(gm)
        self.wanted = wanted
        self.values: dict[Node, object] = {}

    def run_node(self, n: Node) -> object:
        out = super().run_node(n)
        if n in self.wanted:
            self.values[n] = out
        return out


def _quantize(x: torch.Tensor, scale: float, zp: int, qmax: int) -> torch.Tensor:
    return qd.quantize_per_tensor.default(x, scale, zp, 0, qmax, torch.uint8)


def _pad4(t: torch.Tensor) -> torch.Tensor:
    """Zero-pad the last dim to a multiple of 4 (oneDNN's int8 K blocking)."""
    return torch.nn.functional.pad(t, (0, (-t.shape[-1]) % 4))


def _matrices(
    op: Node, x: torch.Tensor, w: torch.Tensor
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(float activation rows (R, K), int8 weight (N, K)) in the kernel's reduction order.

    Linear: ``x.reshape(-1, K)``. Conv2d, per group: im2col with the input channel innermost
    per kernel tap (oneDNN's blocked order, where ``vpmaddubsw`` pairs neighbouring channels),
    channels zero-padded to a multiple of 4 per tap as oneDNN pads them. Padding pixels are
    float 0.0, which quantizes to the zero point, as in the reference.
    """
    if kernel_family(op) == "qlinear":
        return [(_pad4(x.reshape(-1, x.shape[-1])), _pad4(w))]
    if op.target != torch.ops.aten.conv2d.default or w.dim() != 4:
        raise ValueError(f"saturation is modelled for linear and conv2d, not {op.target}")
    stride, padding, dilation, groups = conv_params(op)
    n, (o, cg, kh, kw) = x.shape[0], w.shape
    og, taps = o // groups, kh * kw
    out = []
    for g in range(groups):
        xg = x[:, g * cg : (g + 1) * cg]
        cols = torch.nn.functional.unfold(
            xg, (kh, kw), tuple(dilation), tuple(padding), tuple(stride)
        )
        rows = cols.view(n, cg, taps, -1).permute(0, 3, 2, 1).reshape(-1, taps, cg)
        wg = w[g * og : (g + 1) * og].permute(0, 2, 3, 1).reshape(og, taps, cg)
        out.append((_pad4(rows).reshape(rows.shape[0], -1), _pad4(wg).reshape(og, -1)))
    return out


def _saturating_dot(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Sum over pairs of the int16-saturated ``a[2j]*w[2j] + a[2j+1]*w[2j+1]`` (vpmaddubsw),
    accumulated in int32 (vpmaddwd + vpaddd); ``a`` (R, K) uint8 codes, ``w`` (N, K) int8, K
    even. Computed as the exact product plus the clamping of the pairs that can saturate (a
    pair of weights ``(w1, w2)`` never does when ``max(a) * (|w1| + |w2|)`` fits int16): 20x
    faster on Gaussian weights than every product, which it falls back to when most pairs can."""
    a64, w64 = a.to(torch.int64), w.to(torch.int64)
    exact = (a64.to(torch.float64) @ w64.to(torch.float64).T).to(torch.int64)  # < 2**53: exact
    amax = int(a64.max()) if a64.numel() else 0
    w1, w2 = w64[:, 0::2], w64[:, 1::2]  # (N, K/2)
    n_idx, j_idx = torch.nonzero(amax * (w1.abs() + w2.abs()) > 32767, as_tuple=True)
    if n_idx.numel() == 0:
        return exact.to(torch.int32)
    if n_idx.numel() > w1.numel() // 2:  # most pairs can saturate: all products, per chunk
        out = []
        for chunk in w.split(64):  # (R, 64, K) int32 products at a time: bounded memory
            prod = a[:, None, :].to(torch.int32) * chunk[None, :, :].to(torch.int32)
            out.append((prod[..., 0::2] + prod[..., 1::2]).clamp(-32768, 32767).sum(-1))
        return torch.cat(out, dim=1)
    pairs = a64[:, 2 * j_idx] * w1[n_idx, j_idx] + a64[:, 2 * j_idx + 1] * w2[n_idx, j_idx]
    correction = torch.zeros_like(exact).index_add_(1, n_idx, pairs.clamp(-32768, 32767) - pairs)
    return (exact + correction).to(torch.int32)


_MAX_ROWS = 64  # output positions sampled per consumer (evenly spaced): the error is a mean


@dataclass(frozen=True)
class _Noise:
    """Squared errors of one group's dot products, summed over its consumers."""

    reference: float  # the reference's own: [0, 255] activations vs the float activations, at
    # least the rounding noise of its step (see ``_rounding_noise``)
    saturating: float  # added by the saturating kernel, vs the reference's int32 dots
    seven_bit: float  # added by the 7-bit form, vs the reference's int32 dots

    def __add__(self, o: _Noise) -> _Noise:
        return _Noise(
            self.reference + o.reference,
            self.saturating + o.saturating,
            self.seven_bit + o.seven_bit,
        )


def _rounding_noise(step: torch.Tensor | float, w: torch.Tensor, rows: int) -> float:
    """The squared error a round-to-nearest activation with ``step`` puts on ``rows`` rows of
    dot products with ``w`` (N, K), in expectation: ``step**2 / 12 * sum(w**2)`` per row
    (``step`` a float or one per row, (R, 1)). The reference's own noise at a node is at least
    this much against float, though the activation it quantizes may already sit on the grid
    (a quantize -> dequantize -> max-pool -> quantize chain at one scale rounds nothing the
    second time): measured there, it is ~0, and any form would seem to lose ~100 dB."""
    w2 = float(w.to(torch.float64).pow(2).sum())
    if isinstance(step, torch.Tensor):
        return float(step.to(torch.float64).pow(2).sum()) / 12.0 * w2
    return rows * step * step / 12.0 * w2


def _form_noise(
    xr: torch.Tensor,
    w: torch.Tensor,
    full: tuple[torch.Tensor, torch.Tensor | float, torch.Tensor | float],
    seven_bit: tuple[torch.Tensor, torch.Tensor | float, torch.Tensor | float],
) -> _Noise:
    """The noise of the dot products of float rows ``xr`` (R, K) with int8 weights ``w`` (N, K),
    K padded to 4, in each form: ``full`` is the reference's (uint8 codes (R, K), step, zero
    point), through the saturating kernel, ``seven_bit`` the 7-bit form's; steps and zero points
    are scalars (static activations) or one per row, (R, 1) (per-token tokens)."""
    (a8, s8, z8), (a7, s7, z7) = full, seven_bit
    wd = w.to(torch.float64)
    exact = (a8.to(torch.float64) - z8) @ wd.T * s8
    sat = (_saturating_dot(a8, w).to(torch.float64) - z8 * wd.sum(-1)) * s8
    seven = (a7.to(torch.float64) - z7) @ wd.T * s7
    floating = xr.to(torch.float64) @ wd.T
    reference = float((exact - floating).pow(2).sum())
    return _Noise(
        max(reference, _rounding_noise(s8, w, xr.shape[0])),
        float((sat - exact).pow(2).sum()),
        float((seven - exact).pow(2).sum()),
    )


def _errors(op: Node, x: torch.Tensor, s: float, z: int, w: torch.Tensor) -> _Noise:
    """The noise of ``op``'s dot products on ``x`` (float activation) in each form."""
    noise = _Noise(0.0, 0.0, 0.0)
    z7 = round(z / 2)  # Python's round: half to even
    for rows, wg in _matrices(op, x, w):
        idx = torch.linspace(0, rows.shape[0] - 1, min(_MAX_ROWS, rows.shape[0])).long()
        xr = rows[idx]
        a8, a7 = _quantize(xr, s, z, 255), _quantize(xr, 2 * s, z7, 127)
        noise = noise + _form_noise(xr, wg, (a8, s, z), (a7, 2 * s, z7))
    return noise


def _measure(gm: GraphModule, consumers: list[Node], values: dict[Node, object]) -> _Noise:
    """The group's noise, summed over ``consumers``."""
    total = _Noise(0.0, 0.0, 0.0)
    for op in consumers:
        a, wq = act_q(op.args[0]), weight_q(op.args[1])
        if a is None or wq is None or not a.is_static:
            raise ValueError(f"{op.name}: not a static dq activation with an int8 weight")
        x = values[a.float_input] if a.float_input is not None else None
        assert isinstance(x, torch.Tensor) and isinstance(a.scale, float)
        assert isinstance(a.zero_point, int)
        total = total + _errors(op, x.float(), a.scale, a.zero_point, w=wq.tensors(gm)[0])
    return total


def _decide(noise: _Noise) -> tuple[str, str]:
    """(form, why): the form that loses less SQNR here, unless even that one loses more than
    ``ISA_ADAPTED_NODE_MAX_SQNR_LOSS_DB`` (then float)."""
    loss_sat = sqnr_loss_db(noise.reference, noise.saturating)
    loss_seven = sqnr_loss_db(noise.reference, noise.seven_bit)
    measured = (
        f"measured on the example inputs, SQNR of these dot products vs the reference's: "
        f"saturating (vpmaddubsw) -{loss_sat:.2f} dB, 7-bit -{loss_seven:.2f} dB"
    )
    if min(loss_sat, loss_seven) > ISA_ADAPTED_NODE_MAX_SQNR_LOSS_DB:
        limit = f"both over {ISA_ADAPTED_NODE_MAX_SQNR_LOSS_DB} dB"
        return FORM_FLOAT, f"{measured}: {limit}"
    return (FORM_SATURATING if loss_sat <= loss_seven else FORM_7BIT), measured


def choose_activation_forms(
    gm: GraphModule, isa: CpuInt8Isa, example_inputs: tuple[object, ...]
) -> list[ActivationChoice]:
    """The form of every uint8 activation group feeding a conv / linear of ``gm`` on ``isa``."""
    limit = max_exact_activation_qmax(isa, torch.uint8)
    todo: list[tuple[list[Node], list[Node]]] = []
    choices: list[ActivationChoice] = []
    for group in _groups(gm):
        consumers = _consumers(group)
        if not consumers or all(_qmax(q) <= limit for q in group):
            if consumers:
                choices.append(_choice(group, consumers, FORM_EXACT, f"exact on {isa.describe()}"))
            continue
        todo.append((group, consumers))
    if not todo:
        return choices
    wanted: set[Node] = set()
    for group, _ in todo:
        wanted.update(q.args[0] for q in group if isinstance(q.args[0], Node))
    values = record_values(gm, example_inputs, wanted)
    for group, consumers in todo:
        try:
            noise = _measure(gm, consumers, values)
        except (RuntimeError, ValueError, AssertionError) as e:
            reason = f"saturation not measurable ({e}); the 7-bit form is exact"
            choices.append(_choice(group, consumers, FORM_7BIT, reason))
            continue
        form, why = _decide(noise)
        reason = f"no VNNI ({isa.describe()}), full-range uint8 activations -> {form}: {why}"
        choices.append(_choice(group, consumers, form, reason, noise))
    return choices


def _choice(
    group: list[Node], consumers: list[Node], form: str, reason: str, noise: _Noise | None = None
) -> ActivationChoice:
    losses = (0.0, 0.0)
    if noise is not None:
        losses = (
            sqnr_loss_db(noise.reference, noise.saturating),
            sqnr_loss_db(noise.reference, noise.seven_bit),
        )
    return ActivationChoice(
        tuple(q.name for q in group), tuple(op.name for op in consumers), form, reason, *losses
    )


def fold_float_weight(gm: GraphModule, op: Node) -> None:
    """A conv / linear kept float reads its weight as a float constant with the dequantized
    values, so neither tier dequantizes it again on every call (Inductor's freezing does not
    fold a dequantize of an int8 constant)::

        w_int8 -> dequantize_per_channel(w_int8, s, z, ...) -> op   ==>   w_float -> op
    """
    wq = weight_q(op.args[1])
    if wq is None:
        return
    dq = wq.dq
    args = tuple(constant_value(gm, a) if isinstance(a, Node) else a for a in dq.args)
    name = f"_pt2q_float_weight_{op.name}"
    gm.register_buffer(name, dq.target(*args, **dq.kwargs))  # type: ignore[operator]
    with gm.graph.inserting_before(op):
        attr = gm.graph.get_attr(name)
    attr.meta.update({k: v for k, v in dq.meta.items() if k == "val"})
    op.replace_input_with(dq, attr)


def apply_forms(gm: GraphModule, choices: list[ActivationChoice]) -> bool:
    """Rewrite ``gm`` for the chosen forms: ``FORM_7BIT`` groups re-quantized to [0, 127]
    (scale x2, zero point / 2); ``FORM_FLOAT`` consumers read the float activation directly
    (their q/dq pair then dangles and is removed)."""
    seven = {n for c in choices if c.form == FORM_7BIT for n in c.quantizes}
    floating = {n for c in choices if c.form == FORM_FLOAT for n in c.consumers}
    changed = False
    for node in list(gm.graph.nodes):
        if node.name in floating:
            a = act_q(node.args[0])
            assert a is not None and a.float_input is not None
            node.replace_input_with(a.dq, a.float_input)
            fold_float_weight(gm, node)
            changed = True
        if node.name not in seven:
            continue
        q = _static_q(node)
        assert q is not None and isinstance(q.scale, float) and isinstance(q.zero_point, int)
        new = (2 * q.scale, round(q.zero_point / 2), 0, 127, torch.uint8)
        node.args = (q.value, *new)
        for dq in list(node.users):
            if _is_static_dq(dq):
                dq.args = (node, *new)
        changed = True
    if changed:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return changed
