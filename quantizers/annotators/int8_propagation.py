"""x86 recipe: extend int8 through ops that run on int8 when their input is int8.

For each op of ``ops`` (max/avg pools, adaptive avg pool, flatten, cat) in graph order whose
inputs all end a quantized pattern (see ``has_int8_output``)::

    producer(int8 out) -> pool        pool: input_qspec_map {producer: A},
                                            output SharedQuantizationSpec((producer, pool))
    p0, p1, ... -> cat                cat:  {p0: A, p1..: Shared((p0, cat))}, output Shared((p0, cat))

so dq -> op -> q keeps one scale and Inductor lowers it to the int8 op.

A pass-through op is extended only *inside an int8 chain*: its output must reach, through
other ops of ``ops`` only, a node whose annotation quantizes that edge (a conv / linear / mul
input, ...). Otherwise its int8 output would be dequantized straight into a float op: a q/dq
pair that costs time and accuracy for nothing (attention: ``q/k/v linear -> view -> permute ->
float matmul`` quantizes nothing after the linears).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch.fx import GraphModule, Node

from pt2q.quantizer import (
    Q_ANNOTATION_KEY,
    QuantizationSpec,
    QuantizationSpecBase,
    SharedQuantizationSpec,
)
from pt2q.quantizers.annotation import (
    any_annotated,
    has_int8_output,
    readers_through,
    reads_int8,
    set_float_reason,
    write_annotation,
)
from pt2q.quantizers.config_rules import ConfigRules
from pt2q.quantizers.op_tables import CAT_OPS, OpOverload

__all__ = ["Int8PropagationFamily", "annotate_int8_propagation"]


@dataclass(frozen=True)
class Int8PropagationFamily:
    """``ops`` extended when their input is int8 and their output feeds an int8 consumer."""

    ops: frozenset[OpOverload]

    def annotate(self, gm: GraphModule, rules: ConfigRules) -> None:
        """This family's annotation step (a recipe entry): ``annotate_int8_propagation(gm, self, rules)``."""
        annotate_int8_propagation(gm, self, rules)


def _inputs(node: Node) -> list[Node]:
    first = node.args[0]
    if node.target in CAT_OPS and isinstance(first, (list, tuple)):  # cat(tensors, dim)
        return [a for a in first if isinstance(a, Node)]
    return [first] if isinstance(first, Node) else []


def _feeds_int8_consumer(node: Node, ops: frozenset[OpOverload]) -> bool:
    """Whether ``node``'s output reaches, through ``ops`` only, an annotation quantizing it with
    a static spec (a per-token dynamic linear quantizes the float value itself)."""

    def static(reader: Node, value: Node) -> bool:
        spec = reader.meta[Q_ANNOTATION_KEY].input_qspec_map[value]
        return not (isinstance(spec, QuantizationSpec) and spec.is_dynamic)

    return any(reads_int8(r, value) and static(r, value) for r, value in readers_through(node, ops))


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
        if not _feeds_int8_consumer(node, family.ops):
            set_float_reason(
                node, "output feeds no int8 consumer (a q/dq pair here would be wasted)"
            )
            continue
        first = inputs[0]
        shared = SharedQuantizationSpec((first, node))
        input_map: dict[Node, QuantizationSpecBase | None] = {first: act}
        for other in inputs[1:]:
            input_map.setdefault(other, shared)
        write_annotation(node, input_map, shared, int8_output=True)
