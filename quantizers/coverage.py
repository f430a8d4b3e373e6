"""Coverage report: after ``annotate``, which ops were quantized and why the others stay float.

``coverage(gm)`` reads only ``node.meta`` (annotations and ``pt2q_float_reason``), so it works on
the output of any pt2q quantizer, of a ComposableQuantizer, and on a prepared model (observers
are skipped). Reported ops: weighted ops, matmul/bmm, scaled_dot_product_attention, add, mul,
pools, cat, embedding. A quantized post-op fused into a conv/linear names its anchor
(``NodeCoverage.fused_into``, shown as ``post-op of linear_3``).

``check_something_annotated`` is the loud part: a quantizer that annotated none of the
conv/linear ops of a model raises ``NothingQuantizedError`` when it has no config at all (a
configuration mistake) and warns (``NothingQuantizedWarning``) when its configs exist but filtered
everything out (maybe on purpose, e.g. everything set to None).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from torch.fx import GraphModule, Node

from pt2q.qdq.meta import kept_float_reasons
from pt2q.quantizer import Q_ANNOTATION_KEY, QuantizationAnnotation
from pt2q.quantizers.annotation import (
    DYNAMIC_NOTE_KEY,
    FLOAT_REASON_KEY,
    FUSED_INTO_KEY,
    INT8_OUTPUT_KEY,
    set_float_reason,
)
from pt2q.quantizers.op_tables import (
    ADAPTIVE_AVG_POOL_OPS,
    ADD_OPS,
    ATTENTION_OPS,
    AVG_POOL_OPS,
    CAT_OPS,
    CONV_OPS,
    LINEAR_OPS,
    MATMUL_OPS,
    MAX_POOL_OPS,
    MUL_OPS,
    WEIGHTED_OPS,
    OpOverload,
)

__all__ = [
    "REPORTED_OPS",
    "NodeCoverage",
    "CoverageReport",
    "NothingQuantizedError",
    "NothingQuantizedWarning",
    "coverage",
    "fill_default_reasons",
    "check_something_annotated",
]

REPORTED_OPS: frozenset[OpOverload] = (
    WEIGHTED_OPS
    | MATMUL_OPS
    | ATTENTION_OPS
    | ADD_OPS
    | MUL_OPS
    | MAX_POOL_OPS
    | AVG_POOL_OPS
    | ADAPTIVE_AVG_POOL_OPS
    | CAT_OPS
)


class NothingQuantizedError(ValueError):
    """A quantizer with no config annotated none of a model's conv/linear ops."""


class NothingQuantizedWarning(UserWarning):
    """A quantizer's configs filtered out every conv/linear op of a model."""


@dataclass(frozen=True)
class NodeCoverage:
    """One reported node: its name, op, whether any of its edges/outputs is quantized, and if
    not, why (None when quantized); ``fused_into`` names the conv/linear a quantized post-op
    (add, relu...) runs inside, else None; ``note`` says why a quantized node departs from its
    config (a static linear made dynamic), else None."""

    node: str
    op: str
    quantized: bool
    reason: str | None
    fused_into: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class CoverageReport:
    """Per-node coverage in graph order; ``str(report)`` is a table for humans."""

    entries: tuple[NodeCoverage, ...]

    @property
    def quantized(self) -> list[str]:
        return [e.node for e in self.entries if e.quantized]

    @property
    def float_reasons(self) -> dict[str, str]:
        """Node name -> reason, for every reported node left in float."""
        return {e.node: e.reason or "" for e in self.entries if not e.quantized}

    def for_op(self, op: OpOverload) -> list[NodeCoverage]:
        return [e for e in self.entries if e.op == str(op)]

    def __str__(self) -> str:
        n_q = len(self.quantized)
        lines = [f"{n_q}/{len(self.entries)} reported ops quantized"]
        for e in self.entries:
            status = "int8 " if e.quantized else "float"
            note = e.reason or (f"post-op of {e.fused_into}" if e.fused_into else e.note or "")
            lines.append(f"  {status} {e.node:<28} {e.op:<28} {note}".rstrip())
        return "\n".join(lines)


def _is_quantized(node: Node) -> bool:
    """Claimed by a quantizer: it has specs, or it is a fused post-op of a quantized pattern
    (x86 ``conv -> add -> relu``: add and relu carry empty annotations, run inside the kernel)."""
    ann = node.meta.get(Q_ANNOTATION_KEY)
    if not isinstance(ann, QuantizationAnnotation) or not ann._annotated:
        return False
    if FLOAT_REASON_KEY in node.meta:  # claimed to stay float (e.g. annotators/masks.py)
        return False
    has_spec = any(s is not None for s in ann.input_qspec_map.values())
    return (
        has_spec
        or ann.output_qspec is not None
        or node.meta.get(INT8_OUTPUT_KEY) is True
        or (any(_is_quantized(i) for i in node.all_input_nodes if i.op == "call_function"))
    )


def coverage(gm: GraphModule) -> CoverageReport:
    """The coverage report of an annotated (or prepared) ``gm``; an op a PTQ algorithm left to
    compute in float (``pt2q.algorithms``: ``meta["pt2q"]["kept_float_ops"]``) is float, with
    the algorithm's reason."""
    entries = []
    float_ops = kept_float_reasons(gm, ops=True)
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target not in REPORTED_OPS:
            continue
        quantized = _is_quantized(node) and node.name not in float_ops
        reason = None
        if not quantized:
            reason = float_ops.get(node.name) or node.meta.get(FLOAT_REASON_KEY, "not annotated")
        fused_into = node.meta.get(FUSED_INTO_KEY) if quantized else None
        note = node.meta.get(DYNAMIC_NOTE_KEY) if quantized else None
        entries.append(
            NodeCoverage(node.name, str(node.target), quantized, reason, fused_into, note)
        )
    return CoverageReport(tuple(entries))


def fill_default_reasons(gm: GraphModule, quantizer: str, supported: frozenset[OpOverload]) -> None:
    """Give every reported, unannotated node without a reason a default one from ``quantizer``."""
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target not in REPORTED_OPS:
            continue
        if node.target in supported:
            set_float_reason(node, f"{quantizer}: no pattern of this op matched here")
        else:
            set_float_reason(node, f"{quantizer}: unsupported op {node.target}")


def check_something_annotated(gm: GraphModule, quantizer: str, has_config: bool) -> None:
    """Raise / warn (see module docstring) if ``gm`` has conv/linear and none is quantized."""
    anchors = [
        n for n in gm.graph.nodes if n.op == "call_function" and n.target in (CONV_OPS | LINEAR_OPS)
    ]
    if not anchors or any(_is_quantized(n) for n in anchors):
        return
    names = ", ".join(n.name for n in anchors[:5]) + (" ..." if len(anchors) > 5 else "")
    if not has_config:
        raise NothingQuantizedError(
            f"{quantizer} annotated none of the {len(anchors)} conv/linear nodes ({names}): "
            "expected a config, found none; call set_global(...) or a module/function setter"
        )
    reasons = {n.name: n.meta.get(FLOAT_REASON_KEY, "?") for n in anchors[:5]}
    warnings.warn(
        f"{quantizer} annotated none of the {len(anchors)} conv/linear nodes; reasons: {reasons}",
        NothingQuantizedWarning,
        stacklevel=3,
    )
