"""Eval-mode dropout nodes are identities: remove them so the ops around them can fuse.

An eval-mode export keeps ``aten.dropout.default(x, p, False)``; between a linear and its
residual add it hides the ``linear -> add`` post-op from the pattern matchers (BERT's
``dense -> dropout -> add(residual)``). This pass replaces every dropout whose ``train``
argument is the literal ``False`` by its input:

* ``dropout / dropout_ / feature_dropout / alpha_dropout / feature_alpha_dropout (x, p, False)``
  -> ``x``;
* ``native_dropout(x, p, False)``: its ``getitem 0`` users -> ``x``; the node itself is removed
  only when its mask output (``getitem 1``) is unused (unused getitems are removed with it).

Train-mode dropout (``train=True``, QAT) and a non-literal ``train`` are never touched.
"""

from __future__ import annotations

import operator

import torch
from torch.fx import GraphModule, Node

from pt2q.quantizers.op_tables import OpOverload

__all__ = ["DROPOUT_OPS", "NATIVE_DROPOUT_OPS", "remove_eval_dropout"]

aten = torch.ops.aten

# (input, p, train) -> one tensor.
DROPOUT_OPS: frozenset[OpOverload] = frozenset(
    {
        aten.dropout.default,
        aten.dropout_.default,
        aten.feature_dropout.default,
        aten.feature_dropout_.default,
        aten.alpha_dropout.default,
        aten.alpha_dropout_.default,
        aten.feature_alpha_dropout.default,
        aten.feature_alpha_dropout_.default,
    }
)
# (input, p, train) -> (output, mask).
NATIVE_DROPOUT_OPS: frozenset[OpOverload] = frozenset({aten.native_dropout.default})


def _train_arg(node: Node) -> object:
    return node.args[2] if len(node.args) > 2 else node.kwargs.get("train")


def _remove_native(gm: GraphModule, node: Node, x: Node) -> None:
    for user in list(node.users):
        if user.op != "call_function" or user.target is not operator.getitem:
            continue
        if user.args[1] == 0:
            user.replace_all_uses_with(x)
        if not user.users:
            gm.graph.erase_node(user)
    if not node.users:
        gm.graph.erase_node(node)


def remove_eval_dropout(gm: GraphModule) -> GraphModule:
    """Remove every eval-mode dropout of ``gm`` in place (see module docstring); returns ``gm``."""
    changed = False
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or _train_arg(node) is not False:
            continue
        x = node.args[0]
        if not isinstance(x, Node):
            continue
        if node.target in DROPOUT_OPS:
            node.replace_all_uses_with(x)
            gm.graph.erase_node(node)
            changed = True
        elif node.target in NATIVE_DROPOUT_OPS:
            _remove_native(gm, node, x)
            changed = True
    if changed:
        gm.recompile()
    return gm
