"""Standalone elementwise binary ops (add, mul) with an optional fused relu.

::

    a   b                     input_qspec_map {a: A, b: A}   (tensor operands only)
     \\ /
     add/mul  [-> relu]        last node: output A if observe_output, and the int8-output mark

Scalar operands stay float; an op with a non-float or missing tensor operand stays float with
a reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch.fx import GraphModule, Node

from pt2q.quantizer import QuantizationSpecBase
from pt2q.quantizers.annotation import (
    any_annotated,
    is_float_tensor,
    set_float_reason,
    write_annotation,
)
from pt2q.quantizers.config_rules import ConfigRules
from pt2q.quantizers.op_tables import OpOverload

__all__ = ["BinaryFamily", "annotate_binary"]


@dataclass(frozen=True)
class BinaryFamily:
    """``ops`` to annotate, ``relu_ops`` fused after them; ``same_shape`` requires two tensor
    operands of equal shape (x86 mul), else scalar operands are allowed and left float."""

    ops: frozenset[OpOverload]
    relu_ops: frozenset[OpOverload] = frozenset()
    observe_output: bool = True
    same_shape: bool = False

    def annotate(self, gm: GraphModule, rules: ConfigRules) -> None:
        """This family's annotation step (a recipe entry): ``annotate_binary(gm, self, rules)``."""
        annotate_binary(gm, self, rules)


def annotate_binary(gm: GraphModule, family: BinaryFamily, rules: ConfigRules) -> None:
    """Annotate every unclaimed ``family.ops`` node (with its relu when fusable)."""
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in family.ops or any_annotated([node]):
            continue
        resolved = rules.resolve(node)
        config = resolved.config
        if config is None:
            set_float_reason(node, f"config is None ({resolved.rule})")
            continue
        if config.input_activation is None:
            set_float_reason(node, "weight-only config: activations stay float")
            continue
        if config.input_activation.is_dynamic:
            set_float_reason(node, "dynamic quantization applies to weighted ops only")
            continue
        operands = [a for a in node.args[:2] if isinstance(a, Node)]
        if any(not is_float_tensor(a) for a in operands) or not operands:
            set_float_reason(node, "an operand is not a float tensor")
            continue
        if family.same_shape and (
            len(operands) != 2 or operands[0].meta["val"].shape != operands[1].meta["val"].shape
        ):
            set_float_reason(node, "needs two tensor operands of the same shape")
            continue
        act = config.input_activation
        inputs: dict[Node, QuantizationSpecBase | None] = dict.fromkeys(operands, act)
        relu = next(iter(node.users)) if len(node.users) == 1 else None
        fuse = relu is not None and relu.target in family.relu_ops and not any_annotated([relu])
        out = config.output_activation if family.observe_output else None
        write_annotation(node, inputs, None if fuse else out, int8_output=not fuse)
        if fuse:
            assert relu is not None
            write_annotation(relu, {}, out, int8_output=True)
