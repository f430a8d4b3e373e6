"""Carry quantization annotations over when a QAT pass re-points a conv's weight edge.

The QAT conv-bn fusion replaces the edge ``(W, conv)`` by ``(W * scale, conv)`` and removes the
edge ``(b, conv)``; every annotation that names those edges (the conv's own input map, and
``SharedQuantizationSpec`` / ``DerivedQuantizationSpec`` of other nodes, e.g. a bias derived from
the weight's observer) must follow, or prepare would observe an edge that no longer exists.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch.fx import GraphModule, Node

from pt2q.quantizer import (
    Q_ANNOTATION_KEY,
    DerivedQuantizationSpec,
    QuantizationAnnotation,
    SharedQuantizationSpec,
)

__all__ = ["remap_input_edge", "has_output_qspec"]


def has_output_qspec(node: Node) -> bool:
    """Whether a quantizer asked for ``node``'s output to be observed."""
    ann = node.meta.get(Q_ANNOTATION_KEY)
    return isinstance(ann, QuantizationAnnotation) and ann.output_qspec is not None


def _remap(value: Any, mapping: dict[tuple[Node, Node], tuple[Node, Node]]) -> Any:
    if isinstance(value, tuple) and value in mapping:
        return mapping[value]
    return value


def _remap_spec(spec: Any, mapping: dict[tuple[Node, Node], tuple[Node, Node]]) -> Any:
    if isinstance(spec, SharedQuantizationSpec):
        new = _remap(spec.edge_or_node, mapping)
        return spec if new is spec.edge_or_node else SharedQuantizationSpec(new)
    if isinstance(spec, DerivedQuantizationSpec):
        derived = [_remap(e, mapping) for e in spec.derived_from]
        if all(a is b for a, b in zip(derived, spec.derived_from, strict=True)):
            return spec
        return dataclasses.replace(spec, derived_from=derived)
    return spec


def remap_input_edge(
    gm: GraphModule, user: Node, old: Node, new: Node | None, dropped: Node | None = None
) -> None:
    """After ``user``'s input ``old`` was replaced by ``new`` (and input ``dropped`` removed),
    move ``user``'s spec for ``old`` to ``new``, forget the one for ``dropped``, and re-point
    shared / derived specs anywhere in ``gm`` that name the edge ``(old, user)``."""
    ann = user.meta.get(Q_ANNOTATION_KEY)
    if isinstance(ann, QuantizationAnnotation):
        ann.input_qspec_map = {
            (new if k is old and new is not None else k): v
            for k, v in ann.input_qspec_map.items()
            if k is not dropped and not (k is old and new is None)
        }
    if new is None:
        return
    mapping = {(old, user): (new, user)}
    for node in gm.graph.nodes:
        a = node.meta.get(Q_ANNOTATION_KEY)
        if not isinstance(a, QuantizationAnnotation):
            continue
        a.input_qspec_map = {k: _remap_spec(v, mapping) for k, v in a.input_qspec_map.items()}
        a.output_qspec = _remap_spec(a.output_qspec, mapping)
