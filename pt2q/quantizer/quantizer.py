"""The ``Quantizer`` base class: the public API for backends (and users) to annotate graphs."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from pt2q.quantizer.specs import (
    Q_ANNOTATION_KEY,
    DerivedQuantizationSpec,
    EdgeOrNode,
    FixedQParamsQuantizationSpec,
    ObserverOrFakeQuantize,
    QuantizationAnnotation,
    QuantizationSpec,
    QuantizationSpecBase,
    SharedQuantizationSpec,
)

# torchao's quantizer.quantizer module also holds the specs and the annotation key
__all__ = [
    "Q_ANNOTATION_KEY",
    "DerivedQuantizationSpec",
    "EdgeOrNode",
    "FixedQParamsQuantizationSpec",
    "QuantizationAnnotation",
    "QuantizationSpec",
    "QuantizationSpecBase",
    "Quantizer",
    "SharedQuantizationSpec",
]


class Quantizer(ABC):
    """Says how an exported graph is quantized by writing ``QuantizationAnnotation``s.

    Subclasses implement ``annotate`` (write ``node.meta["quantization_annotation"]``; never insert
    nodes) and ``validate`` (raise if the annotated graph is not supported). The other hooks are
    optional. ``prepare_pt2e`` calls, in order: ``transform_for_annotation``, ``annotate``,
    ``validate``, then ``prepare_obs_or_fq_callback`` once observers exist.
    """

    def transform_for_annotation(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
        """Optional rewrite before annotation (e.g. scalars to tensors, decompose an op)."""
        return model

    @abstractmethod
    def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
        """Annotate nodes of ``model`` in place and return it."""

    @abstractmethod
    def validate(self, model: torch.fx.GraphModule) -> None:
        """Raise if the annotated ``model`` is not supported by the backend."""

    def prepare_obs_or_fq_callback(
        self,
        model: torch.fx.GraphModule,
        edge_or_node_to_obs_or_fq: dict[EdgeOrNode, ObserverOrFakeQuantize],
    ) -> None:
        """Optional: adjust the observers of each edge/node before they are inserted.

        The dict maps every annotated edge and node to its observer (shared ones map to the same
        instance); entries may be replaced.
        """
        return
