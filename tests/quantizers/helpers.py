"""Shared helpers for the quantizer tests: export, a compact annotation dump, q/dq counting."""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizer import (
    Q_ANNOTATION_KEY,
    QuantizationAnnotation,
    QuantizationSpec,
    QuantizationSpecBase,
    SharedQuantizationSpec,
)

__all__ = ["export", "describe", "describe_spec", "count_qdq", "calibrated_convert", "op_counts"]


def export(model: torch.nn.Module, *args: torch.Tensor) -> GraphModule:
    """``torch.export.export(model.eval(), args).module()`` (the graph users hand to prepare)."""
    return torch.export.export(model.eval(), args).module()


def describe_spec(spec: QuantizationSpecBase | None) -> str:
    """``u8``/``i8`` + ``c<axis>`` for per-channel, ``dyn`` for dynamic, ``=x`` / ``=x->y`` shared."""
    if spec is None:
        return "-"
    if isinstance(spec, SharedQuantizationSpec):
        e = spec.edge_or_node
        return f"={e.name}" if isinstance(e, Node) else f"={e[0].name}->{e[1].name}"
    assert isinstance(spec, QuantizationSpec), spec
    s = {torch.uint8: "u8", torch.int8: "i8"}.get(spec.dtype, str(spec.dtype))
    if spec.qscheme in (torch.per_channel_symmetric, torch.per_channel_affine_float_qparams):
        s += f"c{spec.ch_axis}"
    return s + ("dyn" if spec.is_dynamic else "")


def describe(gm: GraphModule) -> str:
    """One line per annotated node: ``name: in(arg=spec, ...) out=spec``, graph order."""
    lines = []
    for node in gm.graph.nodes:
        ann = node.meta.get(Q_ANNOTATION_KEY)
        if not isinstance(ann, QuantizationAnnotation):
            continue
        ins = ", ".join(f"{k.name}={describe_spec(v)}" for k, v in ann.input_qspec_map.items())
        lines.append(f"{node.name}: in({ins}) out={describe_spec(ann.output_qspec)}")
    return "\n".join(lines)


def count_qdq(gm: GraphModule) -> dict[str, int]:
    """Occurrences of each quantized_decomposed op (by overload name) in ``gm``."""
    counts: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_function" and "quantized_decomposed" in str(node.target):
            name = str(node.target).replace("quantized_decomposed.", "")
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def calibrated_convert(
    model: torch.nn.Module, quantizer: Any, batches: list[torch.Tensor]
) -> GraphModule:
    """Export on ``batches[0]``, prepare, calibrate on all but the last batch (held out), convert;
    the health warnings an outlier test model raises are silenced."""
    prepared = prepare_pt2e(torch.export.export(model, (batches[0],)).module(), quantizer)
    for x in batches[:-1]:
        prepared(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return convert_pt2e(prepared)


def op_counts(gm: GraphModule) -> Counter[str]:
    """How many call_function nodes of each target (by name) ``gm`` holds."""
    return Counter(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
