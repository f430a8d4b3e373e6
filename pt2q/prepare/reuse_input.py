"""``ReuseInputObserver`` specs -> sharing with the input's observer.

A spec whose constructor is ``ReuseInputObserver`` (the class or ``.with_args(...)``) on the
output of ``y = op(x, ...)`` or on its input edge ``x -> op`` means "quantize like ``x``"::

    edge x -> op annotated     output of y: SharedQuantizationSpec((x, op))
    else x's output annotated  output of y: SharedQuantizationSpec(x)
    else (x stays float)       output of y: None (float too)

and the same for an input edge ``x -> op``: it shares ``x``'s output observer, or stays float.
Runs on the prepare copy after ``Quantizer.validate``, before sharing is planned.
"""

from __future__ import annotations

from torch.fx import GraphModule, Node

from pt2q.observer.partial import PartialWrapper
from pt2q.observer.passthrough import ReuseInputObserver
from pt2q.quantizer.specs import (
    Q_ANNOTATION_KEY,
    QuantizationSpec,
    QuantizationSpecBase,
    SharedQuantizationSpec,
)

__all__ = ["resolve_reuse_input"]


def _is_reuse_input(spec: QuantizationSpecBase | None) -> bool:
    if not isinstance(spec, QuantizationSpec):
        return False
    ctr = spec.observer_or_fake_quant_ctr
    target = ctr.target if isinstance(ctr, PartialWrapper) else ctr
    return isinstance(target, type) and issubclass(target, ReuseInputObserver)


def _output_annotated(node: Node) -> bool:
    ann = node.meta.get(Q_ANNOTATION_KEY)
    return (
        ann is not None and ann.output_qspec is not None and not _is_reuse_input(ann.output_qspec)
    )


def _edge_annotated(producer: Node, consumer: Node) -> bool:
    ann = consumer.meta.get(Q_ANNOTATION_KEY)
    if ann is None:
        return False
    spec = ann.input_qspec_map.get(producer)
    return spec is not None and not _is_reuse_input(spec)


def resolve_reuse_input(model: GraphModule) -> bool:
    """Rewrite every ReuseInputObserver spec as described in the module docstring."""
    changed = False
    for node in model.graph.nodes:
        ann = node.meta.get(Q_ANNOTATION_KEY)
        if ann is None:
            continue
        for producer, spec in list(ann.input_qspec_map.items()):
            if _is_reuse_input(spec):
                shared = SharedQuantizationSpec(producer) if _output_annotated(producer) else None
                ann.input_qspec_map[producer] = shared
                changed = True
        if _is_reuse_input(ann.output_qspec):
            first = next(iter(node.all_input_nodes), None)
            if first is not None and _edge_annotated(first, node):
                ann.output_qspec = SharedQuantizationSpec((first, node))
            elif first is not None and _output_annotated(first):
                ann.output_qspec = SharedQuantizationSpec(first)
            else:
                ann.output_qspec = None
            changed = True
    return changed
