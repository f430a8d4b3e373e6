"""Checks every lowering runs first: is this a converted (reference) program?

Lowering takes what ``convert_pt2e`` returns. Two mistakes used to pass silently: lowering a
prepared-but-unconverted model (its observers kept running inside the "lowered" program) and
lowering a float model (nothing quantized, reported as lowered). ``require_converted_program``
refuses both; ``warn_if_nothing_lowered`` flags a lowering that kept every node in reference form
(e.g. an x86-quantized uint8 program given to the int8-only ARM lowering).
"""

from __future__ import annotations

import warnings
from collections import Counter

import torch
from torch.fx import GraphModule, Node

from pt2q.qdq.meta import PT2Q_META_KEY

__all__ = [
    "NotAConvertedProgramError",
    "NothingLoweredWarning",
    "require_converted_program",
    "warn_if_nothing_lowered",
    "qdq_dtypes",
]


class NotAConvertedProgramError(ValueError):
    """A lowering got a float model or a prepared model that convert_pt2e has not converted."""


class NothingLoweredWarning(UserWarning):
    """A lowering matched none of the program's quantized nodes."""


def _graph_module(model: object) -> GraphModule | None:
    if isinstance(model, torch.export.ExportedProgram):
        return model.graph_module
    return model if isinstance(model, GraphModule) else None


def _is_qdq(node: Node) -> bool:
    return node.op == "call_function" and getattr(node.target, "namespace", None) == (
        "quantized_decomposed"
    )


def _observer_calls(gm: GraphModule) -> list[str]:
    from pt2q.observer.base import ObserverBase

    names = []
    for node in gm.graph.nodes:
        if node.op != "call_module":
            continue
        try:
            module = gm.get_submodule(str(node.target))
        except AttributeError:
            continue
        if isinstance(module, ObserverBase):
            names.append(f"'{node.target}' ({type(module).__name__})")
    return names


def require_converted_program(model: object, api: str) -> None:
    """Raise ``NotAConvertedProgramError`` unless ``model`` is a converted program.

    Converted means: no observer / fake-quantizer calls left, and either ``convert_pt2e``
    marked it (``model.meta["pt2q"]["stage"] == "converted"``, which also covers the integer
    reference representation) or it holds ``quantized_decomposed`` q/dq ops (e.g. an
    ``ExportedProgram`` saved and loaded). Anything that is not a GraphModule / ExportedProgram
    is left to the caller's own type check.
    """
    gm = _graph_module(model)
    if gm is None:
        return
    observers = _observer_calls(gm)
    if observers:
        raise NotAConvertedProgramError(
            f"{api}: expected a converted program (convert_pt2e's result), found a prepared "
            f"model still calling {len(observers)} observer(s): {', '.join(observers[:4])}"
            f"{' ...' if len(observers) > 4 else ''}. Run calibration data through it, then "
            "lower convert_pt2e(prepared)."
        )
    stage = gm.meta.get(PT2Q_META_KEY, {}).get("stage")
    if stage == "converted" or any(_is_qdq(n) for n in gm.graph.nodes):
        return
    raise NotAConvertedProgramError(
        f"{api}: expected a converted program with quantized_decomposed quantize/dequantize "
        f"ops, found a float graph ({len(gm.graph.nodes)} nodes, none quantized, not marked "
        "by convert_pt2e). Quantize it first: prepare_pt2e(model, quantizer), calibrate, "
        "convert_pt2e, then lower the result."
    )


def qdq_dtypes(model: GraphModule) -> Counter[str]:
    """How many quantize ops of the program produce each integer dtype (e.g. ``{'uint8': 5}``)."""
    found: Counter[str] = Counter()
    for node in model.graph.nodes:
        if _is_qdq(node) and node.target.__name__.startswith("quantize_per"):
            dtype = node.args[-1] if isinstance(node.args[-1], torch.dtype) else None
            dtype = node.kwargs.get("dtype", dtype)
            found[str(dtype).removeprefix("torch.")] += 1
    return found


def warn_if_nothing_lowered(
    api: str, model: GraphModule, lowered: int, supported: str, hint: str
) -> None:
    """Warn (``NothingLoweredWarning``) when a lowering rewrote none of ``model``'s quantized
    nodes. ``supported`` says what the backend takes (e.g. ``"int8"``); ``hint`` what to do."""
    if lowered:
        return
    dtypes = qdq_dtypes(model)
    found = ", ".join(f"{n} {d}" for d, n in sorted(dtypes.items())) or "no quantize ops"
    warnings.warn(
        f"{api}: nothing was lowered: the backend takes {supported} programs, this one has "
        f"{found} quantize op(s); every node stays in reference (q/dq) form. {hint}",
        NothingLoweredWarning,
        stacklevel=3,
    )
