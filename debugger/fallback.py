"""``auto_fallback``: leave the most sensitive layers in float until the output is good enough.

    result = auto_fallback(float_ep, make_quantizer, calib_batches, eval_batches, target=30.0)
    result.quantizer      # make_quantizer() with set_module_name(name, None) for each fallback
    result.module_names   # the layers left in float, in the order they were added
    result.model          # the converted model, reproducible from result.quantizer

Order: layers ranked by ``rank_sensitivity`` on the fully quantized model (highest output
metric when only that layer is left in float first). Each step re-quantizes for real with the
growing fallback list (prepare_pt2e, calibrate, convert_pt2e), so the returned quantizer
reproduces the reported figure exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.export import ExportedProgram
from torch.fx import GraphModule
from torch.utils._pytree import tree_leaves

from pt2q.debugger.matching import as_batches, as_graph_module
from pt2q.debugger.metrics import get_metric
from pt2q.debugger.sensitivity import rank_sensitivity
from pt2q.quantizer import Quantizer

__all__ = ["FallbackResult", "auto_fallback", "quantize", "output_metric"]

OutputMetric = Callable[[Sequence[Any], Sequence[Any]], float]


@dataclass
class FallbackResult:
    """The configuration found and what it gives; ``history`` is (fallback list, metric)."""

    module_names: list[str]
    quantizer: Quantizer
    model: GraphModule
    value: float
    reached: bool
    history: list[tuple[list[str], float]] = field(default_factory=list)


def quantize(
    float_gm: GraphModule, quantizer: Quantizer, calibration: Iterable[Any]
) -> GraphModule:
    """prepare_pt2e, run every calibration batch, convert_pt2e (float_gm is not modified)."""
    from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e

    prepared = prepare_pt2e(float_gm, quantizer)
    with torch.no_grad():
        for args in as_batches(calibration):
            prepared(*args)
    return convert_pt2e(prepared)


def output_metric(metric: str = "sqnr") -> OutputMetric:
    """``fn(float_outputs, quant_outputs)``: registry ``metric`` streamed over all batches."""

    def fn(refs: Sequence[Any], acts: Sequence[Any]) -> float:
        m = get_metric(metric)
        state = m.init()
        for ref, act in zip(refs, acts, strict=True):
            for r, a in zip(tree_leaves(ref), tree_leaves(act), strict=True):
                m.update(state, r.float(), a.float())
        return m.finalize(state)

    return fn


def _run(gm: GraphModule, batches: list[tuple[Any, ...]]) -> list[Any]:
    with torch.no_grad():
        return [gm(*args) for args in batches]


def auto_fallback(
    float_model: ExportedProgram | GraphModule,
    make_quantizer: Callable[[], Quantizer],
    calibration: Iterable[Any],
    inputs: Iterable[Any],
    target: float,
    metric: str | OutputMetric = "sqnr",
    higher_is_better: bool = True,
    max_fallback: int | None = None,
) -> FallbackResult:
    """Greedily leave layers in float until the output ``metric`` reaches ``target``.

    ``make_quantizer()`` must return a fresh quantizer with ``set_module_name(name, None)``;
    ``float_model`` must carry numeric debug handles. ``metric`` is a registry name or
    ``fn(float_outputs, quant_outputs) -> float``. Returns the best configuration found;
    ``reached`` says whether it meets ``target``.
    """
    float_gm = as_graph_module(float_model, "auto_fallback(float_model)")
    calib = list(as_batches(calibration))
    batches = list(as_batches(inputs))
    if isinstance(metric, str):
        higher_is_better = get_metric(metric).higher_is_better
        score = output_metric(metric)
    else:
        score = metric
    refs = _run(float_gm, batches)

    def ok(v: float) -> bool:
        return v >= target if higher_is_better else v <= target

    def attempt(names: list[str]) -> tuple[Quantizer, GraphModule, float]:
        quantizer = make_quantizer()
        for name in names:
            if not hasattr(quantizer, "set_module_name"):
                raise TypeError(
                    f"auto_fallback: {type(quantizer).__name__} has no set_module_name(name, None)"
                )
            quantizer.set_module_name(name, None)
        model = quantize(float_gm, quantizer, calib)
        return quantizer, model, score(refs, _run(model, batches))

    quantizer, model, value = attempt([])
    history: list[tuple[list[str], float]] = [([], value)]
    names: list[str] = []
    if not ok(value):
        ranking = rank_sensitivity(float_gm, model, batches)
        ranking.sort(key=lambda r: -r.only_float)
        candidates: list[str] = []
        for row in ranking:
            if row.module_path and row.module_path not in candidates:
                candidates.append(row.module_path)
        if max_fallback is not None:
            candidates = candidates[:max_fallback]
        for name in candidates:
            names = names + [name]
            quantizer, model, value = attempt(names)
            history.append((names, value))
            if ok(value):
                break
    return FallbackResult(names, quantizer, model, value, ok(value), history)
