"""AWQ (activation-aware weight quantization) on an exported float graph, for per-group weights.

Low-bit weights lose most where the input channel they multiply is large. For the linears
reading one activation ``X`` (q/k/v share theirs) AWQ (Lin et al., 2023) scales input channel
``j`` by ``s_j = rms(X_j) ** alpha`` before quantizing, and divides the activation back::

    X' = X / s        W' = W * s          (X' W'^T == X W^T: float-equivalent)

then clips each weight group's range (``[lo, hi] * f``, ``f`` from ``shrink``) to the factor with
the smallest rounding error weighted by ``E[X'_j ** 2]``. ``alpha`` (from ``alphas``) is chosen per
activation to minimise the linears' output error ``trace(D H D^T)``, ``D = W - deq(q(W'))/s``,
``H = E[X^T X]`` on the calibration batches, simulating exactly the ``weight`` spec's observer
(its granularity, range, mapping and zero points); ``alpha = 0`` with ``f = 1`` (plain
rounding) is always a candidate, so no group gets worse on the recorded inputs. With a dynamic
``activation`` spec (8da4w's per-token int8) the error also counts the activation's own
rounding noise ``n``: ``|n(X / s) deq(q(W'))^T|^2`` on a subsample of the recorded rows (larger
alphas flatten ``X / s``, as SmoothQuant's do).

The division is placed as ``smooth`` places it (``pt2q.algorithms.input_scaling``): folded
into the ``layer_norm`` producing ``X`` (into a private copy of it when others read ``X`` too),
else a ``mul(X, 1 / s)`` node in front of the linears. The
clipping is written into the weights (``W' = clamp(W * s, lo * f, hi * f)`` per group), so the
weight observer of ``weight`` (min / max) sees the chosen range and the reference program is the
plain flow's ``quantized_decomposed`` program; clipping, unlike scaling, changes the float
function (by less than half a quantization step per clipped weight's group range).
Run it on the float graph before ``prepare_pt2e`` with the config's weight spec::

    config = llm_config("8da4w")
    awq(exported, calibration_batches, config.weight, activation=config.input_activation)

then, for a 4-bit scheme, ``pt2q.algorithms.gptq`` on the calibrated prepared model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.fx import GraphModule

from pt2q.affine.block_size import get_block_size
from pt2q.affine.dynamic import choose_dynamic_qparams, dynamic_kind
from pt2q.affine.primitives import fake_quantize_affine
from pt2q.algorithms.batches import Batch
from pt2q.algorithms.capture import SecondMoment, record
from pt2q.algorithms.input_scaling import linear_groups, place_input_division
from pt2q.algorithms.params import get_param, set_param, weight_bias
from pt2q.convert.affine import ir_zero_point
from pt2q.quantizer import QuantizationSpec

__all__ = ["AwqGroup", "awq", "ACTIVATION_ROWS", "DEFAULT_ALPHAS", "DEFAULT_SHRINK"]

DEFAULT_ALPHAS = tuple(i / 10 for i in range(11))  # 0 (no scaling) .. 1
DEFAULT_SHRINK = tuple(1.0 - 0.025 * i for i in range(21))  # range factors 1 (none) .. 0.5
ACTIVATION_ROWS = 2048  # rows (tokens) per activation kept to simulate its dynamic quantization


@dataclass(frozen=True)
class AwqGroup:
    """Linears scaled together, the activation they read, the alpha chosen, where the division
    went (``"layer_norm"``, ``"layer_norm copy"``, ``"mul"``, or ``"none"`` when only clipping
    helped) and the output error on the calibration inputs relative to plain rounding (< 1)."""

    linears: tuple[str, ...]
    activation: str
    alpha: float
    placed: str
    error_ratio: float


def _observer(spec: QuantizationSpec, dynamic: bool) -> Any:
    """A fresh observer of ``spec`` (its dtype, range and qscheme)."""
    return spec.observer_or_fake_quant_ctr(
        dtype=spec.dtype,
        quant_min=spec.quant_min,
        quant_max=spec.quant_max,
        qscheme=spec.qscheme,
        is_dynamic=dynamic,
    )


class _Grid:
    """The weight spec's quantization of one (N, K) weight, one block per (row, group)."""

    def __init__(self, spec: QuantizationSpec, w: torch.Tensor) -> None:
        obs = _observer(spec, dynamic=False)
        self.observer = obs
        granularity = getattr(obs, "granularity", None)
        if granularity is None:
            raise ValueError(
                f"awq: the weight spec's observer {type(obs).__name__} is not an affine "
                "observer (PerGroup / PerAxis granularity); use an llm_config scheme's weight spec"
            )
        block = get_block_size(tuple(w.shape), granularity)
        if w.dim() != 2 or block[0] != 1:
            raise ValueError(
                f"awq: weight of shape {tuple(w.shape)} with {granularity} has blocks {block}; "
                "expected one block per (row, group of columns)"
            )
        self.group = block[1]
        obs(w)
        self.lo0, self.hi0 = obs.min_val.clone(), obs.max_val.clone()

    def _expand(self, t: torch.Tensor) -> torch.Tensor:
        return t.float().reshape(self.lo0.shape[0], -1).repeat_interleave(self.group, dim=1)

    def fake_quant(self, w: torch.Tensor, f: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(dequantized w, and its squared error) with every block's range scaled by ``f``,
        rounded as ``quantize_per_channel_group`` does."""
        obs = self.observer
        obs.min_val, obs.max_val = self.lo0 * f, self.hi0 * f
        scale, zp = obs.calculate_qparams()
        s, z = self._expand(scale), self._expand(ir_zero_point(obs, scale, zp))
        q = (w * (1.0 / s) + z).round().clamp(obs.quant_min, obs.quant_max)
        d = (q - z) * s
        return d, (w - d).pow(2)

    def clip(self, w: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        """``w`` clamped per block to its range times ``factor`` (one per block)."""
        lo = self._expand(self.lo0 * factor.reshape(self.lo0.shape))
        hi = self._expand(self.hi0 * factor.reshape(self.hi0.shape))
        return torch.minimum(torch.maximum(w, lo), hi)


def _quantize(
    spec: QuantizationSpec, w: torch.Tensor, importance: torch.Tensor, shrink: Sequence[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the dequantized weight, the clipped weight) for the range factor per block with the
    smallest ``importance``-weighted rounding error."""
    grid = _Grid(spec, w)
    n = w.shape[0]
    weight = importance.float().reshape(1, -1)
    best_err = torch.full((n, w.shape[1] // grid.group), float("inf"))
    best_d, best_f = torch.zeros_like(w), torch.ones_like(best_err)
    for f in shrink:
        d, err = grid.fake_quant(w, f)
        err = (err * weight).reshape(n, -1, grid.group).sum(-1)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_f = torch.where(better, torch.full_like(best_f, f), best_f)
        best_d = torch.where(better.repeat_interleave(grid.group, dim=1), d, best_d)
    return best_d, grid.clip(w, best_f)


def _output_error(
    w: torch.Tensor, d: torch.Tensor, s: torch.Tensor, h: torch.Tensor, noise: torch.Tensor | None
) -> float:
    """Output error of linear ``w`` on the calibration inputs (second moment ``h``) when its
    scaled weight ``w * s`` dequantizes to ``d``: ``trace(D H D^T)``, ``D = w - d / s``, plus
    the mean squared ``noise @ d^T`` over the rows of the activation ``X / s``'s ``noise``."""
    e = (w - d / s).double()
    err = float(((e @ h) * e).sum())
    if noise is not None:
        err += float((noise @ d.t()).double().pow(2).sum()) / noise.shape[0]
    return err


class _DynamicActivation:
    """The rounding noise ``deq(q(x)) - x`` of a dynamic activation spec (per token or per
    tensor), with the qparams the converted program's choose-qparams op computes."""

    def __init__(self, spec: QuantizationSpec) -> None:
        if not spec.is_dynamic:
            raise ValueError(
                "awq: activation must be a dynamic spec (an llm_config scheme's "
                f"input_activation, e.g. 8da4w's), got a static one: {spec}"
            )
        obs = _observer(spec, dynamic=True)
        self.obs = obs
        self.kind = dynamic_kind(
            obs.granularity, obs.mapping_type, obs.dtype, obs.quant_min, obs.quant_max, "awq"
        )

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        obs = self.obs
        eps = torch.finfo(torch.float32).eps if obs.eps is None else obs.eps
        scale, zp = choose_dynamic_qparams(
            x, self.kind, obs.mapping_type, obs.dtype, obs.quant_min, obs.quant_max, eps
        )
        block = get_block_size(tuple(x.shape), obs.granularity)
        fq = fake_quantize_affine(
            x, block, scale, zp, obs.target_dtype, obs.quant_min, obs.quant_max
        )
        return fq - x


class _RowSample:
    """Reducer keeping every ``stride``-th row (token) seen, ``stride`` doubling whenever more
    than ``2 * cap`` rows are kept: an even subsample of at most ``2 * cap`` rows."""

    def __init__(self, cap: int) -> None:
        self.cap, self.stride, self.seen = cap, 1, 0
        self.rows: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor) -> None:
        rows = x.reshape(-1, x.shape[-1]).float()
        self.rows.append(rows[(-self.seen) % self.stride :: self.stride])
        self.seen += rows.shape[0]
        if sum(r.shape[0] for r in self.rows) > 2 * self.cap:
            self.rows, self.stride = [torch.cat(self.rows)[::2]], self.stride * 2

    def sample(self) -> torch.Tensor:
        return torch.cat(self.rows)


def _scales(h: torch.Tensor, alpha: float) -> torch.Tensor:
    rms = torch.diag(h).clamp(min=0).sqrt().float()  # (K,)
    rms = rms.clamp(min=float(rms.max()) * 1e-5 + 1e-12)
    s = rms.pow(alpha)
    return (s / (s.max() * s.min()).sqrt()).clamp(1e-4, 1e4)


def awq(
    gm: GraphModule,
    batches: Sequence[Batch],
    weight: QuantizationSpec,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    shrink: Sequence[float] = DEFAULT_SHRINK,
    activation: QuantizationSpec | None = None,
) -> list[AwqGroup]:
    """AWQ every linear group of float ``gm`` in place (``gm`` is the caller's own exported
    copy; parameters are replaced, never written into), for weights quantized by the affine
    ``weight`` spec (an ``llm_config`` scheme's ``.weight``). Returns the groups changed.

    ``activation``, the config's dynamic ``input_activation`` (8da4w's per-token int8), adds
    the activation's rounding noise to the error alpha is chosen by: ``|n(X / s) d^T|^2`` per
    row, ``n`` the spec's dynamic fake-quantization noise, on an even subsample of at most
    ``2 * ACTIVATION_ROWS`` recorded rows (``d`` the dequantized scaled weight); None (weights
    only) suits weight-only schemes."""
    if not batches:
        raise ValueError("awq: give at least one calibration batch")
    if not alphas or not shrink or any(not 0 < f <= 1 for f in shrink):
        raise ValueError(f"awq: alphas must be non-empty, shrink in (0, 1]; got {alphas}, {shrink}")
    groups = {
        x: linears
        for x, linears in linear_groups(gm).items()
        if all(get_param(gm, weight_bias(lin)[0]).dim() == 2 for lin in linears)  # type: ignore[arg-type]
    }
    act = None if activation is None else _DynamicActivation(activation)
    moments = {x.name: SecondMoment() for x in groups}
    reducers: dict[str, Any] = dict(moments)
    samples = {f"{x.name} rows": _RowSample(ACTIVATION_ROWS) for x in groups if act}
    reducers.update(samples)
    watched: dict[str, tuple[str, int | None]] = {
        key: (key.removesuffix(" rows"), None) for key in reducers
    }
    record(gm, batches, watched, reducers)
    done = []
    for x, linears in groups.items():
        h = moments[x.name].mean()
        rows = samples[f"{x.name} rows"].sample() if act else None
        weights = [get_param(gm, weight_bias(lin)[0]).detach().float() for lin in linears]  # type: ignore[arg-type]
        if any(w.shape[1] != h.shape[0] for w in weights):
            continue
        ones = torch.ones(h.shape[0])
        noise0 = None if act is None or rows is None else act.noise(rows)
        plain = sum(
            _output_error(w, _quantize(weight, w, torch.diag(h), (1.0,))[0], ones, h, noise0)
            for w in weights
        )
        best: tuple[float, float, torch.Tensor, list[torch.Tensor]] | None = None
        for alpha in alphas:
            s = _scales(h, alpha) if alpha else ones
            noise = None if act is None or rows is None else act.noise(rows / s)
            importance = torch.diag(h).float() / s.pow(2)
            err, clipped = 0.0, []
            for w in weights:
                d, c = _quantize(weight, w * s, importance, shrink)
                err += _output_error(w, d, s, h, noise)
                clipped.append(c)
            if err < (plain if best is None else best[0]):
                best = (err, alpha, s, clipped)
        if best is None:
            continue
        err, alpha, s, clipped = best
        for lin, c in zip(linears, clipped, strict=True):
            set_param(gm, weight_bias(lin)[0], c)  # type: ignore[arg-type]
        placed = place_input_division(gm, x, linears, s) if alpha else "none"
        names = tuple(n.name for n in linears)
        done.append(AwqGroup(names, x.name, alpha, placed, err / plain if plain else 1.0))
    gm.graph.lint()
    gm.recompile()
    return done
