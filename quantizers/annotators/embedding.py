"""Weight-only embedding / embedding_bag: the table is quantized per row, indices stay as is.

::

    weight (V, D)  indices        input_qspec_map {weight: config.weight}   (no output spec)
          embedding

Convert folds the weight to an integer constant followed by ``dequantize_per_channel``.
"""

from __future__ import annotations

from torch.fx import GraphModule, Node

from pt2q.quantizers.annotation import any_annotated, set_float_reason, write_annotation
from pt2q.quantizers.config_rules import ConfigRules
from pt2q.quantizers.op_tables import EMBEDDING_OPS

__all__ = ["annotate_embedding"]


def annotate_embedding(gm: GraphModule, rules: ConfigRules) -> None:
    """Annotate the weight edge of every unclaimed embedding / embedding_bag."""
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in EMBEDDING_OPS:
            continue
        if any_annotated([node]):
            continue
        resolved = rules.resolve(node)
        config = resolved.config
        if config is None or config.weight is None:
            set_float_reason(node, f"no weight config ({resolved.rule})")
            continue
        weight = node.args[0]
        if not isinstance(weight, Node):
            set_float_reason(node, "weight is not a tensor node")
            continue
        write_annotation(node, {weight: config.weight})
