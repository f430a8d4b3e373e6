"""Op tables for conv/linear + batch norm patterns, and the parsing of one BN node.

Support is data: every conv / linear / batch-norm overload the BN passes recognise is a row in
``WEIGHTED_OPS`` or ``BN_OPS``; the passes (``pt2q.passes.fold_bn``, ``pt2q.qat.fuse``,
``pt2q.qat.fold``) only read these tables.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import torch
from torch.fx import Node

__all__ = [
    "WeightedOp",
    "WEIGHTED_OPS",
    "BnLayout",
    "BN_OPS",
    "BnMatch",
    "node_arg",
    "match_bn",
    "weighted_op",
    "num_batches_tracked_nodes",
]

aten = torch.ops.aten


@dataclass(frozen=True)
class WeightedOp:
    """How to read one conv/linear overload: which argument holds ``groups`` / ``transposed``.

    All overloads take ``(input, weight, bias, ...)``; the output channel axis of the weight is
    0, except for transposed convs where the weight is ``(C_in, C_out / groups, *k)``.
    """

    kind: str  # "conv", "conv_transpose" or "linear"
    groups_index: int | None  # None: no groups argument (linear)
    transposed_index: int | None = None  # only aten.convolution carries the flag as an argument


WEIGHTED_OPS: dict[Any, WeightedOp] = {
    aten.conv1d.default: WeightedOp("conv", groups_index=6),
    aten.conv2d.default: WeightedOp("conv", groups_index=6),
    aten.conv3d.default: WeightedOp("conv", groups_index=6),
    aten.conv1d.padding: WeightedOp("conv", groups_index=6),  # padding="same" / "valid"
    aten.conv2d.padding: WeightedOp("conv", groups_index=6),
    aten.conv3d.padding: WeightedOp("conv", groups_index=6),
    aten.conv_transpose1d.default: WeightedOp("conv_transpose", groups_index=6),
    aten.conv_transpose2d.input: WeightedOp("conv_transpose", groups_index=6),
    aten.conv_transpose3d.input: WeightedOp("conv_transpose", groups_index=6),
    aten.convolution.default: WeightedOp("conv", groups_index=8, transposed_index=6),
    aten.linear.default: WeightedOp("linear", groups_index=None),
}


@dataclass(frozen=True)
class BnLayout:
    """Argument positions of one batch-norm overload (input, weight, bias, mean, var first)."""

    training_index: int | None  # None: the overload is always eval-mode
    momentum_index: int
    eps_index: int
    returns_tuple: bool  # output 0 is read through operator.getitem


BN_OPS: dict[Any, BnLayout] = {
    aten.batch_norm.default: BnLayout(5, 6, 7, returns_tuple=False),
    aten._native_batch_norm_legit_no_training.default: BnLayout(None, 5, 6, returns_tuple=True),
    aten._native_batch_norm_legit.default: BnLayout(5, 6, 7, returns_tuple=True),
    aten.native_batch_norm.default: BnLayout(5, 6, 7, returns_tuple=True),
}

_ARG_NAMES = ("input", "weight", "bias", "running_mean", "running_var")


def node_arg(node: Node, index: int, name: str, default: Any = None) -> Any:
    """Argument ``index`` (keyword ``name``) of a call_function node, or ``default``."""
    if index < len(node.args):
        return node.args[index]
    return node.kwargs.get(name, default)


@dataclass
class BnMatch:
    """One batch-norm node, parsed. ``output`` is the node carrying the normalised tensor."""

    node: Node
    input: Node
    weight: Node | None
    bias: Node | None
    running_mean: Node
    running_var: Node
    training: bool
    momentum: float
    eps: float
    output: Node  # ``node`` itself, or its ``getitem(node, 0)``


def match_bn(node: Node) -> BnMatch | None:
    """Parse ``node`` if it is a batch norm with running statistics whose only use is output 0.

    Returns None for anything else (other ops, BN without running stats, a tuple-returning BN
    whose saved mean/rstd are read by another node).
    """
    if node.op != "call_function" or node.target not in BN_OPS:
        return None
    layout = BN_OPS[node.target]
    inp, weight, bias, mean, var = (node_arg(node, i, n) for i, n in enumerate(_ARG_NAMES))
    if not isinstance(inp, Node) or not isinstance(mean, Node) or not isinstance(var, Node):
        return None
    training = (
        False
        if layout.training_index is None
        else bool(node_arg(node, layout.training_index, "training"))
    )
    momentum = node_arg(node, layout.momentum_index, "momentum")
    eps = node_arg(node, layout.eps_index, "eps")
    output = node
    if layout.returns_tuple:
        getitems = [u for u in node.users if u.target is operator.getitem]
        if len(getitems) != len(node.users) or any(u.args[1] != 0 for u in getitems):
            return None
        if len(getitems) != 1:
            return None
        output = getitems[0]
    return BnMatch(
        node=node,
        input=inp,
        weight=weight if isinstance(weight, Node) else None,
        bias=bias if isinstance(bias, Node) else None,
        running_mean=mean,
        running_var=var,
        training=training,
        momentum=float(momentum if momentum is not None else 0.1),
        eps=float(eps),
        output=output,
    )


def weighted_op(node: Node) -> tuple[str, int] | None:
    """``(kind, groups)`` of a conv / conv_transpose / linear node, or None for anything else."""
    if node.op != "call_function" or node.target not in WEIGHTED_OPS:
        return None
    row = WEIGHTED_OPS[node.target]
    kind = row.kind
    if row.transposed_index is not None and node_arg(node, row.transposed_index, "transposed"):
        kind = "conv_transpose"
    groups = 1 if row.groups_index is None else int(node_arg(node, row.groups_index, "groups", 1))
    return kind, groups


def num_batches_tracked_nodes(bn: BnMatch) -> list[Node]:
    """The ``num_batches_tracked.add_(1)`` nodes (and their get_attr) of the BN module of ``bn``.

    A train-mode export records ``bn.num_batches_tracked += 1`` as a separate in-place add; once
    the BN is folded away that counter update is dead weight. Found through the module prefix of
    the running-mean attribute (``"layer.bn.running_mean"`` -> ``"layer.bn.num_batches_tracked"``).
    """
    mean = bn.running_mean
    if mean.op != "get_attr" or not str(mean.target).endswith("running_mean"):
        return []
    target = str(mean.target)[: -len("running_mean")] + "num_batches_tracked"
    found: list[Node] = []
    for n in mean.graph.nodes:
        if n.op == "get_attr" and n.target == target:
            adds = [u for u in n.users if u.target is aten.add_.Tensor and not u.users]
            if len(adds) == len(n.users):
                found.extend(adds)
                found.append(n)
    return found
