"""PortNodeMetaForQDQ: copy ``stack_trace`` / ``quantization_tag`` onto the q/dq nodes of a
converted graph from the node each belongs to (torchao's rules)::

    [q -> [dq -> conv -> q] -> [dq -> pool -> q] -> dq]     brackets: who each q/dq takes after

* a dequantize on an annotated input edge takes the consumer's metadata; its quantize too
  when it quantizes a constant (through view-like ops back to a ``get_attr``: those ops and the
  quantize take the constant's metadata);
* the quantize of an annotated output takes the producer's metadata;
* a dynamically quantized input: ``choose_qparams``, its quantize and dequantize take the
  consumer's metadata.

Ops of an unannotated node are left alone. pt2q's convert already copies
``nn_module_stack`` / ``stack_trace`` this way; the pass is for graphs from elsewhere and for
the ``quantization_tag`` key backends set.
"""

from __future__ import annotations

import torch
from torch.fx import GraphModule, Node
from torch.fx.passes.infra.pass_base import PassBase, PassResult

from pt2q.qdq.ops import is_choose_qparams, is_dequantize, is_quantize
from pt2q.quantizer.specs import Q_ANNOTATION_KEY, QuantizationSpecBase
from pt2q.quantizer.utils import is_valid_annotation
from pt2q.utils.nodes import _filter_sym_size_users

__all__ = ["PortNodeMetaForQDQ"]

_PORTED_KEYS = ("stack_trace", "quantization_tag")

aten = torch.ops.aten
# ops allowed between a constant (get_attr) and its quantize
_VIEW_LIKE = {
    aten.flatten.using_ints,
    aten.permute.default,
    aten.permute_copy.default,
    aten.slice_copy.Tensor,
    aten.squeeze.dim,
    aten.squeeze_copy.dim,
    aten.transpose.int,
    aten.view_copy.default,
    aten.view.default,
}


def _port(to_node: Node, from_node: Node) -> None:
    for key in _PORTED_KEYS:
        if key in from_node.meta:
            to_node.meta[key] = from_node.meta[key]


def _source_of(node: Node) -> Node:
    """Walk back through q/dq/choose_qparams ops to the tensor they quantize."""
    while (is_quantize(node) or is_dequantize(node) or is_choose_qparams(node)) and isinstance(
        node.args[0], Node
    ):
        node = node.args[0]
    return node


def _first_choose_qparams(node: Node) -> Node | None:
    queue = list(node.users)
    while queue:
        current = queue.pop(0)
        if is_choose_qparams(current):
            return current
        if current.op != "output":
            queue.extend(current.users)
    return None


def _port_dynamic_input(input_node: Node, node: Node) -> None:
    choose = _first_choose_qparams(input_node)
    if choose is None:
        raise ValueError(
            f"PortNodeMetaForQDQ: node '{node.name}' has a dynamic input spec on "
            f"'{input_node.name}' but no choose_qparams op follows it"
        )
    _port(choose, node)
    for getitem in _filter_sym_size_users(choose):
        for q in _filter_sym_size_users(getitem):
            if is_quantize(q):
                _port(q, node)
                for dq in _filter_sym_size_users(q):
                    _port(dq, node)


def _port_static_input(input_node: Node, node: Node) -> None:
    dq = next(
        (
            arg
            for arg in [*node.args, *node.kwargs.values()]
            if isinstance(arg, Node) and is_dequantize(arg) and _source_of(arg) is input_node
        ),
        None,
    )
    if dq is None:
        return
    q = dq.args[0]
    if isinstance(q, Node) and is_quantize(q):
        chain = [q]
        source = q.args[0]
        while isinstance(source, Node) and source.target in _VIEW_LIKE:
            chain.append(source)
            source = source.args[0]
        if isinstance(source, Node) and source.op == "get_attr":
            for n in chain:
                _port(n, source)
    _port(dq, node)


def _port_input(input_node: Node, node: Node, spec: QuantizationSpecBase | None) -> None:
    if spec is None:
        return
    if getattr(spec, "is_dynamic", False):
        _port_dynamic_input(input_node, node)
    else:
        _port_static_input(input_node, node)


def _port_output(node: Node, spec: QuantizationSpecBase | None) -> None:
    if spec is None:
        return
    for user in _filter_sym_size_users(node):
        if is_quantize(user):
            _port(user, node)


class PortNodeMetaForQDQ(PassBase):
    """See the module docstring. Modifies only metadata; reports ``modified=True`` as torchao."""

    def call(self, graph_module: GraphModule) -> PassResult:
        for node in graph_module.graph.nodes:
            annotation = node.meta.get(Q_ANNOTATION_KEY)
            if not is_valid_annotation(annotation):
                continue
            for input_node, spec in annotation.input_qspec_map.items():
                _port_input(input_node, node, spec)
            _port_output(node, annotation.output_qspec)
        return PassResult(graph_module, True)
