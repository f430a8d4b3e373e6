"""``quantize(model, quantizer, calibration_batches, methods="auto")``: PTQ with algorithms.

One entry point over the plain flow (``prepare_pt2e`` -> calibrate -> ``convert_pt2e``)::

    float graph -[equalize]-[smooth]-[shift]-> prepare -> calibrate -[keep_float]-[mixed_precision]-[gptq]-[sensitivity]-[adaround]-[bias_correction]-> convert
                float -> equivalent float                  (fit batches)  after calibration, before convert

The last quarter of the batches (at least one; ``held_out`` to choose) is held back from
fitting and calibration and judges every step by output SQNR against the float model.
``methods="auto"`` tries each applicable method in the order of ``METHODS`` and keeps it only if
the held-out SQNR improves (a float method also when it improves the score reached after
``keep_float``, applied to both sides); a tuple of names applies exactly those (in ``METHODS`` order) and
still reports the SQNR after each. Returns ``(converted, report)``: the converted program (the
usual q/dq IR) and a :class:`QuantizeReport`. ``mixed_precision`` applies only with a ``target``
(the score the program must reach; it then leaves float the fewest ops that reach it). The user's
model is never modified.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch.fx import GraphModule

from pt2q.algorithms.adaround import adaround
from pt2q.algorithms.batches import Batch, Metric, call, split_batches, sqnr_metric
from pt2q.algorithms.bias_correction import bias_correction
from pt2q.algorithms.equalize import equalize
from pt2q.algorithms.gptq import gptq
from pt2q.algorithms.keep_float import keep_unhealthy_float
from pt2q.algorithms.mixed_precision import keep_float_to_target
from pt2q.algorithms.sensitivity import SensitivityOptions, keep_sensitive_float
from pt2q.algorithms.shift import shift
from pt2q.algorithms.smooth import smooth
from pt2q.passes.fold_bn import fold_bn_into_preceding_op
from pt2q.qdq.meta import kept_float_reasons
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizer.quantizer import Quantizer

__all__ = ["METHODS", "Metric", "MethodResult", "QuantizeReport", "quantize"]

FLOAT_METHODS = ("equalize", "smooth", "shift")  # rewrite the float graph before annotation
# act on the calibrated prepared model
# sensitivity after gptq: it then scores what int8 activations cost once the weights are rounded
# as convert will round them (ResNet-50 XNNPACK: 32.7 -> 33.2 dB, x86 35.1 -> 35.2; before, the
# weights' rounding error hid which activations mattered)
# mixed_precision before the methods that fit weights to the fit batches it scores on (after
# gptq, MobileNetV2 x86's fit batches said 20 dB where unseen images gave 16.5); they then refine
# the ops it leaves int8
CALIBRATED_METHODS = (
    "keep_float",
    "mixed_precision",
    "gptq",
    "sensitivity",
    "adaround",
    "bias_correction",
)
METHODS = FLOAT_METHODS + CALIBRATED_METHODS


@dataclass(frozen=True)
class MethodResult:
    """One method tried: kept or not, held-out output SQNR (dB) with it, what it did."""

    method: str
    kept: bool
    sqnr_db: float
    seconds: float
    detail: str


@dataclass(frozen=True)
class QuantizeReport:
    """Plain-flow SQNR, then each method in order; ``sqnr_db`` is the returned program's."""

    plain_sqnr_db: float
    steps: tuple[MethodResult, ...]
    sqnr_db: float
    held_out_batches: int
    metric: str = "output SQNR"  # or the name of quantize()'s metric (then no dB)

    def __str__(self) -> str:
        unit = " dB" if self.metric == "output SQNR" else ""
        lines = [
            f"{self.metric} on {self.held_out_batches} held-out batch(es): plain "
            f"{self.plain_sqnr_db:.4g}{unit} -> {self.sqnr_db:.4g}{unit}",
        ]
        for r in self.steps:
            status = "kept   " if r.kept else "dropped"
            sqnr = f"{r.sqnr_db:8.4g}{unit}" if not math.isnan(r.sqnr_db) else "     n/a"
            lines.append(f"  {status} {r.method:<16} {sqnr} {r.seconds:6.1f} s  {r.detail}")
        return "\n".join(lines)


def _methods(methods: str | Sequence[str]) -> tuple[tuple[str, ...], bool]:
    if methods == "auto":
        return METHODS, True
    if isinstance(methods, str) or not all(isinstance(m, str) for m in methods):
        raise ValueError(
            f"quantize: methods must be 'auto' or a tuple of {METHODS}, got {methods!r}"
        )
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"quantize: unknown method(s) {unknown}; expected names from {METHODS}")
    return tuple(m for m in METHODS if m in methods), False


class _Trial:
    """Shared state of one ``quantize`` call: the quantizer, fit / held-out batches, the float
    reference outputs on the held-out batches."""

    def __init__(
        self,
        quantizer: Quantizer,
        fit: list[Batch],
        held: list[Batch],
        ref: list[object],
        metric: Metric,
    ):
        self.quantizer, self.fit, self.held, self.ref = quantizer, fit, held, ref
        self.metric = metric

    def calibrated(self, float_gm: GraphModule) -> GraphModule:
        prepared = prepare_pt2e(float_gm, self.quantizer)
        for batch in self.fit:
            call(prepared, batch)
        return prepared

    def convert(self, prepared: GraphModule) -> tuple[GraphModule, float]:
        converted = convert_pt2e(copy.deepcopy(prepared))
        outs = [call(converted, b) for b in self.held]
        return converted, float(self.metric(self.ref, outs, self.held))

    def with_keep_float(self, prepared: GraphModule) -> float:
        """The held-out score of ``prepared`` after ``keep_float`` (its own score when
        ``keep_float`` changes nothing)."""
        candidate = copy.deepcopy(prepared)
        if not keep_unhealthy_float(candidate, self.fit):
            return self.convert(prepared)[1]
        return self.convert(candidate)[1]


def _float_step(name: str, gm: GraphModule, fit: list[Batch]) -> str:
    """Apply float method ``name`` to ``gm`` in place; returns what it did ('' = nothing)."""
    if name == "equalize":
        pairs = equalize(gm, fit)
        return f"{len(pairs)} layer pairs equalized" if pairs else ""
    if name == "shift":
        shifted = shift(gm, fit)
        return f"{len(shifted)} layer_norm outputs centred" if shifted else ""
    groups = smooth(gm, fit)
    alphas = sorted({g.alpha for g in groups})
    return f"{len(groups)} linear groups smoothed (alpha {alphas})" if groups else ""


_CALIBRATED: dict[str, Callable[..., list[str]]] = {
    "keep_float": keep_unhealthy_float,
    "sensitivity": keep_sensitive_float,  # measured on the fit batches by quantize's metric
    "gptq": gptq,  # linear / conv2d weights, per group / channel / tensor: pt2q/algorithms/gptq.py
    "adaround": adaround,
    "bias_correction": bias_correction,
    "mixed_precision": keep_float_to_target,
}


def quantize(
    model: GraphModule,
    quantizer: Quantizer,
    calibration_batches: Sequence[Batch],
    methods: str | Sequence[str] = "auto",
    held_out: int | None = None,
    adaround_seconds: float = 20.0,
    metric: Metric | None = None,
    sensitivity_seconds: float | None = None,
    sensitivity_budget: float = 0.15,
    target: float | None = None,
    mixed_precision_budget: float = 0.5,
) -> tuple[GraphModule, QuantizeReport]:
    """Quantize exported ``model`` with ``quantizer`` and PTQ algorithms (see the module doc).

    ``calibration_batches``: tensors, tuples of positional args or dicts of kwargs.
    ``adaround_seconds`` bounds adaptive rounding's optimisation time, ``sensitivity_seconds``
    (None: no wall-time cut, deterministic) the sensitivity search's scoring and ``sensitivity_budget`` the fraction of activations it
    may keep float (``pt2q/algorithms/sensitivity.py``). ``metric(float outputs,
    quantized outputs, held-out batches) -> float`` (higher is better) replaces output SQNR as
    the judge (e.g. the cosine of sentence embeddings); the report's ``sqnr_db`` fields then
    hold its values. ``target`` (in the metric's units; None: ``mixed_precision`` does not
    apply) is the score ``mixed_precision`` leaves ops float to reach on the fit batches, at most
    ``mixed_precision_budget`` of the quantized ops (``pt2q/algorithms/mixed_precision.py``).
    """
    chosen, auto = _methods(methods)
    if "sensitivity" in chosen:  # fail before the other methods' minutes, not after
        SensitivityOptions(budget=sensitivity_budget, seconds=sensitivity_seconds)
    if "mixed_precision" in chosen and not auto and target is None:
        raise ValueError(
            "quantize: method 'mixed_precision' needs target= (the score to reach, in the "
            "metric's units: dB of output SQNR by default)"
        )
    if "mixed_precision" not in chosen and target is not None:
        raise ValueError(
            f"quantize: target={target!r} is used only by method 'mixed_precision', which "
            f"methods={methods!r} does not include; add it, or use methods='auto'"
        )
    fit, held = split_batches(list(calibration_batches), held_out)
    ref = [call(model, b) for b in held]
    trial = _Trial(quantizer, fit, held, ref, metric or sqnr_metric)
    float_gm = copy.deepcopy(model)  # every rewrite happens on this copy
    fold_bn_into_preceding_op(float_gm)
    float_gm.recompile()
    prepared = trial.calibrated(float_gm)
    best, best_sqnr = trial.convert(prepared)
    plain = best_sqnr
    steps: list[MethodResult] = []
    # auto: a float rewrite is also judged after keep_float on both sides (cheap, no fitting):
    # outlier-dominated activations can mask its gain until they stay float (MiniLM XNNPACK with
    # torchao's static int8 linear outputs: smooth alone 0.960 -> 0.952, smooth + keep_float
    # 0.995 vs keep_float alone 0.993; tests/algorithms/test_smooth_residual.py).
    lookahead = auto and "keep_float" in chosen
    best_ahead = trial.with_keep_float(prepared) if lookahead else -math.inf
    for name in (m for m in chosen if m in FLOAT_METHODS):
        start = time.perf_counter()
        candidate = copy.deepcopy(float_gm)
        detail = _float_step(name, candidate, fit)
        if not detail:
            steps.append(MethodResult(name, False, math.nan, 0.0, "not applicable"))
            continue
        cand_prepared = trial.calibrated(candidate)
        converted, sqnr = trial.convert(cand_prepared)
        ahead = trial.with_keep_float(cand_prepared) if lookahead else -math.inf
        keep = sqnr > best_sqnr or not auto
        if lookahead and not keep and ahead > max(best_ahead, best_sqnr):
            keep = True
            detail += f"; kept for {ahead:.4g} with keep_float (vs {best_ahead:.4g})"
        if keep:
            float_gm, prepared, best, best_sqnr = candidate, cand_prepared, converted, sqnr
            best_ahead = ahead
        steps.append(MethodResult(name, keep, sqnr, time.perf_counter() - start, detail))
    for name in (m for m in chosen if m in CALIBRATED_METHODS):
        start = time.perf_counter()
        if name == "mixed_precision" and target is None:
            steps.append(MethodResult(name, False, math.nan, 0.0, "not applicable (no target=)"))
            continue
        candidate = copy.deepcopy(prepared)
        kwargs: dict[str, Any] = {}
        if name == "adaround":
            kwargs = {"seconds": adaround_seconds}
        elif name == "sensitivity":
            kwargs = {
                "seconds": sensitivity_seconds,
                "budget": sensitivity_budget,
                "metric": trial.metric,
            }
        elif name == "mixed_precision":
            kwargs = {"target": target, "metric": trial.metric, "budget": mixed_precision_budget}
        changed = _CALIBRATED[name](candidate, fit, **kwargs)
        if not changed:
            note = "changed nothing (no such op, or nothing better than the plain flow)"
            steps.append(MethodResult(name, False, math.nan, time.perf_counter() - start, note))
            continue
        converted, sqnr = trial.convert(candidate)
        keep = sqnr > best_sqnr or not auto
        if keep:
            prepared, best, best_sqnr = candidate, converted, sqnr
        if name in ("keep_float", "sensitivity"):
            detail = f"{len(changed)} activations kept float: {', '.join(changed)}"
        elif name == "mixed_precision":
            detail = kept_float_reasons(candidate, ops=True)[changed[0]].split(";")[0]
            detail += f": {', '.join(changed)}"
        else:
            detail = f"{len(changed)} weighted ops changed"
        steps.append(MethodResult(name, keep, sqnr, time.perf_counter() - start, detail))
    name = "output SQNR" if metric is None else getattr(metric, "__name__", "metric")
    return best, QuantizeReport(plain, tuple(steps), best_sqnr, len(held), name)
