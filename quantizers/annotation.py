"""Small helpers every annotator uses to read and write ``node.meta`` (annotations are data).

Five meta keys are involved:

* ``"quantization_annotation"`` (``Q_ANNOTATION_KEY``): the ``QuantizationAnnotation`` prepare reads.
* ``"pt2q_int8_output"`` (``INT8_OUTPUT_KEY``): True on the last node of a matched pattern whose
  backend kernel can produce int8 (x86 recipe: an int8-in-int8-out op after it may consume it).
  Only the quantizers read it; prepare ignores it.
* ``"pt2q_float_reason"`` (``FLOAT_REASON_KEY``): why an annotator left this node in float; the
  coverage report shows it.
* ``"pt2q_fused_into"`` (``FUSED_INTO_KEY``): on a post-op of a matched conv/linear pattern, the
  anchor's node name (the coverage report shows ``post-op of <anchor>``).
* ``"pt2q_dynamic_note"`` (``DYNAMIC_NOTE_KEY``): on a quantized op whose input the quantizer made
  dynamic although its config is static, why (``annotators/float_read_linears.py``,
  ``annotators/token_linears.py``; the coverage report shows it as the node's note).
"""

from __future__ import annotations

from typing import Any, TypeGuard

from torch.fx import Node

from pt2q.qdq.meta import FLOAT_REASON_KEY, FUSED_INTO_KEY, INT8_OUTPUT_KEY
from pt2q.quantizer import Q_ANNOTATION_KEY, QuantizationAnnotation, QuantizationSpecBase

__all__ = [
    "DYNAMIC_NOTE_KEY",
    "INT8_OUTPUT_KEY",
    "FLOAT_REASON_KEY",
    "FUSED_INTO_KEY",
    "is_annotated",
    "any_annotated",
    "write_annotation",
    "set_float_reason",
    "is_float_tensor",
    "has_int8_output",
    "readers_through",
    "reads_int8",
]

DYNAMIC_NOTE_KEY = "pt2q_dynamic_note"


def is_annotated(node: Node) -> bool:
    """Whether some annotator already claimed ``node`` (``_annotated`` is set)."""
    ann = node.meta.get(Q_ANNOTATION_KEY)
    return isinstance(ann, QuantizationAnnotation) and ann._annotated


def any_annotated(nodes: list[Node]) -> bool:
    """Whether any node of a candidate pattern is already claimed."""
    return any(is_annotated(n) for n in nodes)


def write_annotation(
    node: Node,
    input_qspec_map: dict[Node, QuantizationSpecBase | None] | None = None,
    output_qspec: QuantizationSpecBase | None = None,
    int8_output: bool = False,
) -> QuantizationAnnotation:
    """Claim ``node``: store a fresh annotation (entries whose spec is None are dropped).

    ``int8_output`` marks the node as the int8-capable output of a matched pattern. Raises
    ValueError naming the node if it was already claimed: annotators must check first.
    """
    if is_annotated(node):
        raise ValueError(
            f"node '{node.name}' ({node.target}): expected an unannotated node, found an "
            f"existing annotation {node.meta[Q_ANNOTATION_KEY]!r}"
        )
    specs: dict[Node, QuantizationSpecBase | None] = {
        k: v for k, v in (input_qspec_map or {}).items() if v is not None
    }
    ann = QuantizationAnnotation(input_qspec_map=specs, output_qspec=output_qspec, _annotated=True)
    node.meta[Q_ANNOTATION_KEY] = ann
    node.meta.pop(FLOAT_REASON_KEY, None)
    if int8_output:
        node.meta[INT8_OUTPUT_KEY] = True
    return ann


def set_float_reason(node: Node, reason: str) -> None:
    """Record why ``node`` stays float (the first reason recorded wins; claimed nodes ignore it)."""
    if not is_annotated(node):
        node.meta.setdefault(FLOAT_REASON_KEY, reason)


def is_float_tensor(arg: object) -> TypeGuard[Node]:
    """Whether ``arg`` is a Node whose example value is a floating-point tensor."""
    if not isinstance(arg, Node):
        return False
    val = arg.meta.get("val")
    return getattr(val, "is_floating_point", lambda: False)() is True


def has_int8_output(node: Node) -> bool:
    """Whether ``node`` ends a matched pattern whose output can be int8 (see INT8_OUTPUT_KEY),
    or carries an output spec (it is observed)."""
    if not is_annotated(node):
        return False
    ann = node.meta[Q_ANNOTATION_KEY]
    return bool(node.meta.get(INT8_OUTPUT_KEY)) or ann.output_qspec is not None


def readers_through(node: Node, pass_through: frozenset[Any]) -> list[tuple[Node, Node]]:
    """Every ``(reader, value it reads)`` of ``node``'s output, looking through the unannotated
    ``pass_through`` ops it flows into (view, permute, ... that would share its observer); the
    graph's output node is a reader too."""
    found, frontier, seen = [], [(u, node) for u in node.users], set()
    while frontier:
        user, value = frontier.pop()
        if user in seen:
            continue
        seen.add(user)
        if user.op == "call_function" and user.target in pass_through and not is_annotated(user):
            frontier.extend((u, user) for u in user.users)
        else:
            found.append((user, value))
    return found


def reads_int8(reader: Node, value: Node) -> bool:
    """Whether ``reader``'s annotation quantizes its input edge from ``value``."""
    ann = reader.meta.get(Q_ANNOTATION_KEY)
    return isinstance(ann, QuantizationAnnotation) and value in ann.input_qspec_map
