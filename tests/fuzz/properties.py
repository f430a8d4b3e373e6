"""The properties every fuzzed model must satisfy, for every quantizer.

1. export -> prepare -> calibrate -> convert never crashes, except with a pt2q error whose
   message names a node of the graph;
2. every reported op left float has a reason in the quantizer's coverage report;
3. the reference (converted) program is within the model's expected quantization error of
   float: SQNR >= ``program_min_sqnr_db(number of quantized tensors)`` (pt2q.tolerances);
4. each lowering (x86, ARM) runs and is no less accurate against float than the reference,
   by ``lowered_within_program_tolerance`` (pt2q.tolerances).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.tolerances import lowered_within_program_tolerance, program_min_sqnr_db

from .grammar import Spec, describe

QuantizerFactory = Callable[[], object]


def _x86(is_dynamic: bool = False) -> object:
    from pt2q.quantizers import X86InductorQuantizer, get_default_x86_inductor_quantization_config

    config = get_default_x86_inductor_quantization_config(is_dynamic=is_dynamic)
    return X86InductorQuantizer().set_global(config)


def _xnnpack(**kwargs: bool) -> object:
    from pt2q.quantizers import XNNPACKQuantizer, get_symmetric_quantization_config

    return XNNPACKQuantizer().set_global(get_symmetric_quantization_config(**kwargs))


def _composable() -> object:
    from pt2q.quantizers import ComposableQuantizer, EmbeddingQuantizer

    return ComposableQuantizer([EmbeddingQuantizer(), _xnnpack()])  # type: ignore[list-item]


QUANTIZERS: dict[str, QuantizerFactory] = {
    "x86_static": _x86,
    "x86_dynamic": lambda: _x86(is_dynamic=True),
    "xnnpack_static": _xnnpack,
    "xnnpack_dynamic": lambda: _xnnpack(is_dynamic=True),
    "xnnpack_per_channel": lambda: _xnnpack(is_per_channel=True),
    "composable_embedding": _composable,
}


class FuzzFailure(AssertionError):
    """A property did not hold; the message holds the model's description."""


@dataclass
class Outcome:
    """What one (model, quantizer) run produced, for the CLI's summary."""

    quantizer: str
    status: str  # "ok" | "pt2q error" | "nothing quantized"
    sqnr_db: float = math.inf
    quantized_tensors: int = 0
    lowered: dict[str, float] = field(default_factory=dict)  # backend -> SQNR vs float


def sqnr_db(reference: torch.Tensor, actual: torch.Tensor) -> float:
    noise = (reference.double() - actual.double()).pow(2).sum()
    signal = reference.double().pow(2).sum()
    if float(noise) == 0.0:
        return math.inf
    return float(10 * torch.log10(signal / noise)) if float(signal) > 0 else -math.inf


def _export(spec: Spec, example: torch.Tensor) -> torch.fx.GraphModule:
    assert spec.model is not None
    shapes = None
    if spec.dynamic:
        shapes = ({0: torch.export.Dim("batch", min=1, max=16)},)
    return torch.export.export(spec.model, (example,), dynamic_shapes=shapes).module()


def _names_a_node(error: Exception, gm: torch.fx.GraphModule) -> bool:
    text = str(error)
    return any(f"'{n.name}'" in text or f" {n.name} " in text for n in gm.graph.nodes)


def _quantized_tensors(gm: torch.fx.GraphModule) -> int:
    """Distinct quantized values the program dequantizes (activations and folded weights)."""
    sources = set()
    for node in gm.graph.nodes:
        name = getattr(node.target, "__name__", "")
        if node.op == "call_function" and name.startswith("dequantize_per"):
            sources.add(node.args[0])
    return len(sources)


def _fail(spec: Spec, quantizer: str, what: str) -> FuzzFailure:
    return FuzzFailure(f"{quantizer}: {what}\nmodel: {describe(spec)}")


def check(spec: Spec, quantizer: str, lower: tuple[str, ...] = ()) -> Outcome:
    """Run the pipeline for one quantizer and check the properties; raises FuzzFailure."""
    from pt2q.quantizers import NothingQuantizedError, NothingQuantizedWarning, coverage

    gen = torch.Generator().manual_seed(spec.seed)
    batches = [spec.example(2, gen), spec.example(3 if spec.dynamic else 2, gen)]
    gm = _export(spec, batches[0])
    with torch.no_grad():
        expected = gm(batches[0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NothingQuantizedWarning)
            prepared = prepare_pt2e(gm, QUANTIZERS[quantizer]())  # type: ignore[arg-type]
    except NothingQuantizedError:
        return Outcome(quantizer, "nothing quantized")
    except Exception as e:
        if type(e).__module__.startswith("pt2q") and _names_a_node(e, gm):
            return Outcome(quantizer, "pt2q error")
        raise _fail(spec, quantizer, f"prepare_pt2e crashed: {type(e).__name__}: {e}") from e
    missing = {
        n: r for n, r in coverage(prepared).float_reasons.items() if r in ("", "not annotated")
    }
    if missing:
        raise _fail(spec, quantizer, f"ops left float without a reason: {missing}")
    try:
        with torch.no_grad():
            for batch in batches:
                prepared(batch)
        converted = convert_pt2e(prepared)
        with torch.no_grad():
            actual = converted(batches[0])
    except Exception as e:
        if type(e).__module__.startswith("pt2q") and _names_a_node(e, prepared):
            return Outcome(quantizer, "pt2q error")
        raise _fail(spec, quantizer, f"calibrate/convert crashed: {type(e).__name__}: {e}") from e
    n_q = _quantized_tensors(converted)
    outcome = Outcome(quantizer, "ok", sqnr_db(expected, actual), n_q)
    if outcome.sqnr_db < program_min_sqnr_db(n_q):
        raise _fail(
            spec,
            quantizer,
            f"reference SQNR {outcome.sqnr_db:.1f} dB < {program_min_sqnr_db(n_q):.1f} dB "
            f"expected for {n_q} quantized tensors\n{converted.code}",
        )
    for backend in lower:
        lowered_out = _lower(backend, converted, batches[0], spec, quantizer)
        outcome.lowered[backend] = sqnr_db(expected, lowered_out)
        if not lowered_within_program_tolerance(expected, actual, lowered_out):
            raise _fail(
                spec,
                quantizer,
                f"{backend} lowering less accurate than the reference: SQNR vs float "
                f"{outcome.lowered[backend]:.1f} dB, reference {outcome.sqnr_db:.1f} dB",
            )
    return outcome


def _lower(
    backend: str, converted: torch.fx.GraphModule, x: torch.Tensor, spec: Spec, quantizer: str
) -> torch.Tensor:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if backend == "x86":
                from pt2q.lowering import lower_pt2e_quantized_to_x86

                lowered = lower_pt2e_quantized_to_x86(converted, (x,))
            else:
                from pt2q.lowering import lower_pt2e_quantized_to_arm

                lowered = lower_pt2e_quantized_to_arm(converted, (x,))
            with torch.no_grad():
                return lowered(x)  # type: ignore[no-any-return]
    except Exception as e:
        raise _fail(spec, quantizer, f"{backend} lowering crashed: {type(e).__name__}: {e}") from e
