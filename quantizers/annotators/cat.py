"""cat: all inputs and the output share one set of qparams (the first input edge's).

::

    x0  x1 ...                 input_qspec_map {x0: A, x1: Shared((x0, cat)), ...}
      cat                      output Shared((x0, cat))

(The x86 recipe annotates cat only behind int8 producers: see ``int8_propagation``.)
"""

from __future__ import annotations

from torch.fx import GraphModule, Node

from pt2q.quantizer import QuantizationSpecBase, SharedQuantizationSpec
from pt2q.quantizers.annotation import (
    any_annotated,
    is_float_tensor,
    set_float_reason,
    write_annotation,
)
from pt2q.quantizers.config_rules import ConfigRules
from pt2q.quantizers.op_tables import CAT_OPS

__all__ = ["annotate_cat"]


def annotate_cat(gm: GraphModule, rules: ConfigRules) -> None:
    """Annotate every unclaimed cat whose inputs are all float tensors."""
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in CAT_OPS or any_annotated([node]):
            continue
        resolved = rules.resolve(node)
        config = resolved.config
        if config is None:
            set_float_reason(node, f"config is None ({resolved.rule})")
            continue
        inputs = list(node.args[0])
        act = config.input_activation
        if act is None or act.is_dynamic or not all(is_float_tensor(i) for i in inputs):
            set_float_reason(node, "needs float tensor inputs and a static activation config")
            continue
        first: Node = inputs[0]
        shared = SharedQuantizationSpec((first, node))
        input_map: dict[Node, QuantizationSpecBase | None] = {first: act}
        for other in inputs[1:]:
            input_map.setdefault(other, shared)
        write_annotation(node, input_map, shared, int8_output=True)
