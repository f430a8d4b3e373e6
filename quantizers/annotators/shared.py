"""Ops whose output shares the input's qparams (XNNPACK recipe).

Two steps, run after the producing patterns are annotated:

* ``annotate_input_output_sharing`` (adaptive_avg_pool2d): always annotated; the input edge
  reuses the producer's output observer when it has one, else gets A; output Shared((x, op)).
* ``propagate_sharing`` (relu, hardtanh, max_pool2d, mean, view/permute/flatten/...): when the
  producer's output is observed, ``{x: Shared(x)}`` and output ``Shared(x)``: no new observer.
"""

from __future__ import annotations

from torch.fx import GraphModule, Node

from pt2q.quantizer import Q_ANNOTATION_KEY, QuantizationSpecBase, SharedQuantizationSpec
from pt2q.quantizers.annotation import (
    any_annotated,
    is_annotated,
    is_float_tensor,
    set_float_reason,
    write_annotation,
)
from pt2q.quantizers.config_rules import ConfigRules
from pt2q.quantizers.op_tables import OpOverload

__all__ = ["annotate_input_output_sharing", "propagate_sharing"]


def _observed_output(node: Node) -> bool:
    return is_annotated(node) and node.meta[Q_ANNOTATION_KEY].output_qspec is not None


def annotate_input_output_sharing(
    gm: GraphModule, ops: frozenset[OpOverload], rules: ConfigRules
) -> None:
    """Annotate ``ops`` nodes so their output shares the input edge's qparams."""
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in ops or any_annotated([node]):
            continue
        resolved = rules.resolve(node)
        config = resolved.config
        if config is None:
            set_float_reason(node, f"config is None ({resolved.rule})")
            continue
        x = node.args[0]
        act = config.input_activation
        if not is_float_tensor(x) or act is None or act.is_dynamic:
            set_float_reason(node, "needs a float tensor input and a static activation config")
            continue
        assert isinstance(x, Node)
        in_spec: QuantizationSpecBase = SharedQuantizationSpec(x) if _observed_output(x) else act
        write_annotation(node, {x: in_spec}, SharedQuantizationSpec((x, node)), int8_output=True)


def propagate_sharing(gm: GraphModule, ops: frozenset[OpOverload]) -> None:
    """Extend observed outputs through ``ops`` without new observers (graph order)."""
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in ops or is_annotated(node):
            continue
        x = node.args[0]
        if not isinstance(x, Node) or not _observed_output(x):
            continue
        shared = SharedQuantizationSpec(x)
        write_annotation(node, {x: shared}, shared, int8_output=True)
