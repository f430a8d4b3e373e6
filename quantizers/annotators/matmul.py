"""Activation x activation products (matmul, bmm): both operands quantized.

::

    a   b            input_qspec_map {a: A, b: A}
    matmul           output: A if observe_output, and the int8-output mark

``opt_in`` (x86) skips the global config: only an explicit rule quantizes matmul; a matmul no
rule opted in stays float with ``not_opted_in_reason`` (the backend's why) in the coverage.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch.fx import GraphModule

from pt2q.quantizers.annotation import (
    any_annotated,
    is_float_tensor,
    set_float_reason,
    write_annotation,
)
from pt2q.quantizers.config_rules import ConfigRules
from pt2q.quantizers.op_tables import OpOverload

__all__ = ["MatmulFamily", "annotate_matmul"]


@dataclass(frozen=True)
class MatmulFamily:
    ops: frozenset[OpOverload]
    opt_in: bool = False
    observe_output: bool = False
    not_opted_in_reason: str | None = None

    def annotate(self, gm: GraphModule, rules: ConfigRules) -> None:
        """This family's annotation step (a recipe entry): ``annotate_matmul(gm, self, rules)``."""
        annotate_matmul(gm, self, rules)


def annotate_matmul(gm: GraphModule, family: MatmulFamily, rules: ConfigRules) -> None:
    """Annotate every unclaimed ``family.ops`` node with two float tensor operands."""
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in family.ops or any_annotated([node]):
            continue
        resolved = rules.resolve(node, opt_in=family.opt_in)
        config = resolved.config
        if config is None:
            if resolved.opt_in_default and family.not_opted_in_reason is not None:
                set_float_reason(node, family.not_opted_in_reason)
            else:
                set_float_reason(node, f"config is None ({resolved.rule})")
            continue
        act = config.input_activation
        a, b = node.args[:2]
        if act is None or act.is_dynamic or not (is_float_tensor(a) and is_float_tensor(b)):
            set_float_reason(node, "needs two float tensor operands and a static config")
            continue
        out = config.output_activation if family.observe_output else None
        write_annotation(node, {a: act, b: act}, out, int8_output=True)
