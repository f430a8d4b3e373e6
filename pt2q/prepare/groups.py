"""Annotations -> edges -> sharing groups.

Every quantized tensor is a *key*: a node's output (``Node``) or one input edge
(``(producer, consumer)``). Keys that must use the same qparams are unioned into one group, and
prepare creates one observer per group:

* explicit sharing: ``SharedQuantizationSpec(edge_or_node)`` joins its key to the target's group;
* implicit sharing (when the consumer's annotation allows it): an input edge joins the producer's
  output group, or the group of another edge leaving the same producer, when their concrete
  specs agree on dtype, range, qscheme, axis, dynamism and fixed qparams.

Each group then has exactly one *concrete* spec (``QuantizationSpec``,
``FixedQParamsQuantizationSpec`` or ``DerivedQuantizationSpec``); the sharing specs only point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch.fx import GraphModule, Node

from pt2q.errors import AnnotationError
from pt2q.quantizer.specs import (
    Q_ANNOTATION_KEY,
    DerivedQuantizationSpec,
    EdgeOrNode,
    QuantizationAnnotation,
    QuantizationSpecBase,
    SharedQuantizationSpec,
)

__all__ = ["SharingPlan", "plan_sharing", "describe_key", "key_label"]

_SAME_ATTRS = ("dtype", "is_dynamic", "quant_min", "quant_max", "qscheme", "ch_axis")
_FIXED_ATTRS = ("scale", "zero_point")


def describe_key(key: EdgeOrNode) -> str:
    """Human-readable name of a key for error messages: ``conv2d`` or ``x -> conv2d``."""
    if isinstance(key, Node):
        return f"output of node '{key.name}'"
    return f"input edge '{key[0].name}' -> '{key[1].name}'"


def key_label(key: EdgeOrNode) -> str:
    """Short label of a key: ``conv2d`` or ``x -> conv2d``."""
    if isinstance(key, Node):
        return key.name
    return f"{key[0].name} -> {key[1].name}"


@dataclass
class SharingPlan:
    """The result of planning: annotated specs per key and the groups they form."""

    spec_of: dict[EdgeOrNode, QuantizationSpecBase]
    parent: dict[EdgeOrNode, EdgeOrNode] = field(default_factory=dict)
    concrete: dict[EdgeOrNode, QuantizationSpecBase] = field(default_factory=dict)

    def find(self, key: EdgeOrNode) -> EdgeOrNode:
        root = key
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[key] != root:  # path compression
            self.parent[key], key = root, self.parent[key]
        return root

    def groups(self) -> dict[EdgeOrNode, list[EdgeOrNode]]:
        """Root -> member keys, members in annotation (graph) order."""
        out: dict[EdgeOrNode, list[EdgeOrNode]] = {}
        for key in self.spec_of:
            out.setdefault(self.find(key), []).append(key)
        return out

    def group_spec(self, key: EdgeOrNode) -> QuantizationSpecBase:
        """The concrete spec of ``key``'s group."""
        return self.concrete[self.find(key)]


def _same(a: QuantizationSpecBase, b: QuantizationSpecBase) -> bool:
    if isinstance(a, DerivedQuantizationSpec) or isinstance(b, DerivedQuantizationSpec):
        return False
    if type(a) is not type(b):
        return False
    attrs = _SAME_ATTRS + _FIXED_ATTRS
    return all(getattr(a, n, None) == getattr(b, n, None) for n in attrs)


def _collect(model: GraphModule) -> tuple[dict[EdgeOrNode, QuantizationSpecBase], set[Node]]:
    spec_of: dict[EdgeOrNode, QuantizationSpecBase] = {}
    no_implicit: set[Node] = set()
    for node in model.graph.nodes:
        ann = node.meta.get(Q_ANNOTATION_KEY)
        if ann is None:
            continue
        if not isinstance(ann, QuantizationAnnotation):
            raise AnnotationError(
                f"node '{node.name}': meta['{Q_ANNOTATION_KEY}'] must be a "
                f"QuantizationAnnotation, found {type(ann).__name__}"
            )
        if not ann.allow_implicit_sharing:
            no_implicit.add(node)
        inputs = set(node.all_input_nodes)
        for arg, spec in ann.input_qspec_map.items():
            if not isinstance(arg, Node):
                raise AnnotationError(
                    f"node '{node.name}' ({node.target}): input_qspec_map has a key {arg!r} of "
                    f"type {type(arg).__name__}; expected an fx Node that is an input of this "
                    "node (only tensor inputs produced by other nodes can be quantized)"
                )
            if arg not in inputs:
                raise AnnotationError(
                    f"node '{node.name}': input_qspec_map annotates node '{arg.name}', which is "
                    f"not an input of it (inputs: {sorted(n.name for n in inputs)})"
                )
            if spec is None:
                continue
            _check_spec(spec, (arg, node))
            spec_of[(arg, node)] = spec
        if ann.output_qspec is not None:
            _check_spec(ann.output_qspec, node)
            spec_of[node] = ann.output_qspec
    return spec_of, no_implicit


def _check_spec(spec: object, key: EdgeOrNode) -> None:
    if not isinstance(spec, QuantizationSpecBase):
        raise AnnotationError(
            f"{describe_key(key)}: expected a QuantizationSpec / SharedQuantizationSpec / "
            f"DerivedQuantizationSpec / FixedQParamsQuantizationSpec, found {spec!r}"
        )


def plan_sharing(model: GraphModule) -> SharingPlan:
    """Read every annotation of ``model`` and group the keys that share qparams."""
    spec_of, no_implicit = _collect(model)
    plan = SharingPlan(spec_of=spec_of)
    plan.parent = {key: key for key in spec_of}

    # 1. explicit sharing: a forest whose roots are the concrete specs.
    for key, spec in spec_of.items():
        if not isinstance(spec, SharedQuantizationSpec):
            continue
        target = spec.edge_or_node
        if target not in spec_of:
            raise AnnotationError(
                f"{describe_key(key)} is annotated with SharedQuantizationSpec("
                f"{describe_key(target)}), but that target has no quantization spec: annotate it "
                "too, or share with an annotated edge or node"
            )
        plan.parent[plan.find(key)] = plan.find(target)
    for key, spec in spec_of.items():
        if not isinstance(spec, SharedQuantizationSpec):
            root = plan.find(key)
            if root in plan.concrete:
                other = next(k for k in spec_of if k is not key and plan.find(k) == root)
                raise AnnotationError(
                    f"conflicting annotation: {describe_key(key)} and {describe_key(other)} are "
                    "joined by SharedQuantizationSpecs but each has its own concrete spec"
                )
            plan.concrete[root] = spec
    for key in spec_of:
        if plan.find(key) not in plan.concrete:
            raise AnnotationError(
                f"{describe_key(key)}: its SharedQuantizationSpec chain is a cycle with no "
                "concrete QuantizationSpec to share"
            )
    for root in list(plan.concrete):  # re-key by the current roots
        plan.concrete[plan.find(root)] = plan.concrete.pop(root)

    # 2. implicit sharing, in graph order: the producer's output first, then sibling edges.
    for key in spec_of:
        if isinstance(key, Node) or key[1] in no_implicit:
            continue
        producer = key[0]
        candidates: list[EdgeOrNode] = [producer]
        candidates += [(producer, user) for user in producer.users if user is not key[1]]
        for other in candidates:
            if other not in spec_of:
                continue
            ra, rb = plan.find(key), plan.find(other)
            if ra != rb and _same(plan.concrete[ra], plan.concrete[rb]):
                plan.parent[ra] = rb
                del plan.concrete[ra]
    return plan
