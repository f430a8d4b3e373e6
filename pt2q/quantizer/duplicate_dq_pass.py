"""DuplicateDQPass: give each annotated consumer of a shared dequantize its own copy.

For graphs where one ``dequantize`` feeds several users (torchao's convert output, or a graph
edited by hand), so that a lowering can fuse each user's q/dq pattern on its own::

    q -> dq -> a, b        ==>      q -> dq  -> a
                                      \\-> dq' -> b      (for each user with an annotation)

The dynamic pattern ``choose_qparams -> getitem -> q -> dq`` is left shared. ``convert_pt2e``
already emits one dequantize per consumer, so on pt2q's own output this pass changes nothing.
"""

from __future__ import annotations

import operator

from torch.fx import GraphModule, Node
from torch.fx.node import map_arg
from torch.fx.passes.infra.pass_base import PassBase, PassResult

from pt2q.qdq.ops import is_choose_qparams, is_dequantize, is_quantize
from pt2q.quantizer.specs import Q_ANNOTATION_KEY
from pt2q.quantizer.utils import is_valid_annotation
from pt2q.utils.nodes import _filter_sym_size_users

__all__ = ["DuplicateDQPass"]


def _is_dynamic_dq(dq: Node) -> bool:
    """``dq``'s quantize takes its scale from ``getitem(choose_qparams(...))``."""
    q = dq.args[0]
    if not (isinstance(q, Node) and is_quantize(q) and len(q.args) > 1):
        return False
    scale = q.args[1]
    return (
        isinstance(scale, Node)
        and scale.target is operator.getitem
        and isinstance(scale.args[0], Node)
        and is_choose_qparams(scale.args[0])
    )


def _duplicate_for(graph_module: GraphModule, dq: Node, user: Node) -> bool:
    if not is_valid_annotation(user.meta.get(Q_ANNOTATION_KEY)):
        return False
    with graph_module.graph.inserting_after(dq):
        copy = graph_module.graph.node_copy(dq)
    user.args = map_arg(user.args, lambda n: copy if n is dq else n)
    user.kwargs = map_arg(user.kwargs, lambda n: copy if n is dq else n)
    return True


class DuplicateDQPass(PassBase):
    """See the module docstring. ``PassResult.modified`` says whether a copy was made."""

    def call(self, graph_module: GraphModule) -> PassResult:
        modified = False
        for node in list(graph_module.graph.nodes):
            if not is_dequantize(node) or _is_dynamic_dq(node):
                continue
            users = _filter_sym_size_users(node)
            if len(users) <= 1:
                continue
            for user in users:
                modified |= _duplicate_for(graph_module, node, user)
        graph_module.graph.eliminate_dead_code()
        graph_module.recompile()
        return PassResult(graph_module, modified)
