"""x86 recipe: extend int8 through ops that run on int8 when their input is int8.

For each op of ``ops`` (max/avg pools, adaptive avg pool, flatten, cat) in graph order whose
inputs all end a quantized pattern (see ``has_int8_output``)::

    producer(int8 out) -> pool        pool: input_qspec_map {producer: A},
                                            output SharedQuantizationSpec((producer, pool))
    p0, p1, ... -> cat                cat:  {p0: A, p1..: Shared((p0, cat))}, output Shared((p0, cat))

so dq -> op -> q keeps one scale and Inductor lowers it to the int8 op. ``flatten`` is extended
only when one of its users is a quantizable op (as in torchao's recipe).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch.fx import GraphModule, Node

from pt2q.quantizer import QuantizationSpecBase, SharedQuantizationSpec
from pt2q.quantizers.annotation import (
    any_annotated,
    has_int8_output,
    set_float_reason,
    write_annotation,
)
from pt2q.quantizers.config_rules import ConfigRules
from pt2q.quantizers.op_tables import CAT_OPS, OpOverload, aten

__all__ = ["Int8PropagationFamily", "annotate_int8_propagation"]


@dataclass(frozen=True)
class Int8PropagationFamily:
    """``ops`` extended when their input is int8; ``flatten_needs_quantizable_user`` lists the
    ops one of flatten's users must be for flatten to be extended."""

    ops: frozenset[OpOverload]
    flatten_needs_quantizable_user: frozenset[OpOverload]


def _inputs(node: Node) -> list[Node]:
    if node.target in CAT_OPS:
        return [a for a in node.args[0] if isinstance(a, Node)]  # type: ignore[union-attr]
    return [node.args[0]] if isinstance(node.args[0], Node) else []


def annotate_int8_propagation(
    gm: GraphModule, family: Int8PropagationFamily, rules: ConfigRules
) -> None:
    """Annotate ``family.ops`` nodes whose inputs are int8 (see module docstring)."""
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in family.ops or any_annotated([node]):
            continue
        resolved = rules.resolve(node)
        config = resolved.config
        if config is None:
            set_float_reason(node, f"config is None ({resolved.rule})")
            continue
        act = config.input_activation
        if act is None or act.is_dynamic:
            set_float_reason(node, "static activation config needed for int8-in-int8-out ops")
            continue
        inputs = _inputs(node)
        if not inputs or not all(has_int8_output(i) for i in inputs):
            set_float_reason(node, "input is not the int8 output of a quantized pattern")
            continue
        if node.target == aten.flatten.using_ints and node.users:
            if not any(u.target in family.flatten_needs_quantizable_user for u in node.users):
                set_float_reason(node, "flatten has no quantizable user")
                continue
        first = inputs[0]
        shared = SharedQuantizationSpec((first, node))
        input_map: dict[Node, QuantizationSpecBase | None] = {first: act}
        for other in inputs[1:]:
            input_map.setdefault(other, shared)
        write_annotation(node, input_map, shared, int8_output=True)
