"""ComposableQuantizer: run several quantizers in order on one graph.

Each quantizer annotates what the earlier ones left unclaimed. If a later quantizer changes or
removes an annotation written by an earlier one, ``annotate`` raises
``AnnotationConflictError`` naming both quantizers and the node. ``transform_for_annotation``,
``validate`` and ``prepare_obs_or_fq_callback`` delegate to each quantizer in order.
"""

from __future__ import annotations

from torch.fx import GraphModule, Node

from pt2q.quantizer import Q_ANNOTATION_KEY, EdgeOrNode, ObserverOrFakeQuantize, Quantizer
from pt2q.quantizers.coverage import CoverageReport, coverage

__all__ = ["AnnotationConflictError", "ComposableQuantizer"]


class AnnotationConflictError(RuntimeError, ValueError):
    """A later quantizer of a ComposableQuantizer changed an earlier one's annotation.

    A RuntimeError as torchao raises there (and a ValueError, as pt2q raised before)."""


def _fingerprint(node: Node) -> tuple[object, ...] | None:
    ann = node.meta.get(Q_ANNOTATION_KEY)
    if ann is None:
        return None
    specs = tuple((k.name, id(v), v) for k, v in ann.input_qspec_map.items())
    return (id(ann), specs, id(ann.output_qspec), ann.output_qspec, ann._annotated)


class ComposableQuantizer(Quantizer):
    """See the module docstring. ``quantizers`` run in list order."""

    def __init__(self, quantizers: list[Quantizer]) -> None:
        super().__init__()
        for i, q in enumerate(quantizers):
            if not isinstance(q, Quantizer):
                raise TypeError(f"quantizers[{i}]: expected a Quantizer, found {q!r}")
        self.quantizers = list(quantizers)

    def transform_for_annotation(self, model: GraphModule) -> GraphModule:
        for q in self.quantizers:
            model = q.transform_for_annotation(model)
        return model

    def annotate(self, model: GraphModule) -> GraphModule:
        """Run each quantizer's annotate; raise on a changed annotation (see module docstring)."""
        owner: dict[Node, tuple[str, tuple[object, ...]]] = {}
        for i, q in enumerate(self.quantizers):
            name = f"{type(q).__name__} (quantizers[{i}])"
            q.annotate(model)
            for node in model.graph.nodes:
                fp = _fingerprint(node)
                if node in owner:
                    first, before = owner[node]
                    if fp != before:
                        raise AnnotationConflictError(
                            f"node '{node.name}' ({node.target}): {name} changed the annotation "
                            f"written by {first}; expected it unchanged, found "
                            f"{node.meta.get(Q_ANNOTATION_KEY)!r}"
                        )
                elif fp is not None:
                    owner[node] = (name, fp)
        return model

    def validate(self, model: GraphModule) -> None:
        for q in self.quantizers:
            q.validate(model)

    def prepare_obs_or_fq_callback(
        self,
        model: GraphModule,
        edge_or_node_to_obs_or_fq: dict[EdgeOrNode, ObserverOrFakeQuantize],
    ) -> None:
        for q in self.quantizers:
            q.prepare_obs_or_fq_callback(model, edge_or_node_to_obs_or_fq)

    def coverage(self, model: GraphModule) -> CoverageReport:
        return coverage(model)
