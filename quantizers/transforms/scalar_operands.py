"""Scalar operands of binary ops become tensor constants, so they can be annotated.

``x + 1.0`` exports as ``aten.add.Tensor(x, 1.0)``: the scalar is not a node, so no quantization
spec can name it and the add stays float. This pass (torchao's ``_convert_scalars_to_attrs``,
made stricter) registers the scalar as a 0-d buffer of the tensor operand's dtype and feeds it
through a ``get_attr`` node::

    add(x, 1.0)   ->   _tensor_constant_0 = get_attr[target=_tensor_constant_0]   # tensor(1.)
                       add(x, _tensor_constant_0)

Only nodes in ``ops`` whose other operand is a floating-point tensor and that ``wanted(node)``
accepts are rewritten (an int tensor + int scalar keeps its integer semantics). The result is
numerically identical to the float graph: a 0-d tensor takes part in type promotion like a
scalar.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.fx import GraphModule, Node

from pt2q.quantizers.annotation import is_float_tensor
from pt2q.quantizers.op_tables import OpOverload

__all__ = ["CONSTANT_PREFIX", "convert_scalar_operands"]

CONSTANT_PREFIX = "_tensor_constant_"


def _new_buffer_name(gm: GraphModule) -> str:
    i = 0
    while hasattr(gm, f"{CONSTANT_PREFIX}{i}"):
        i += 1
    return f"{CONSTANT_PREFIX}{i}"


def _constant_node(gm: GraphModule, before: Node, value: float, like: Node) -> Node:
    """A ``get_attr`` of a new 0-d buffer holding ``value`` in ``like``'s dtype, with fake
    ``meta["val"]`` from ``like``'s fake mode (so annotators see a float tensor)."""
    like_val = like.meta["val"]
    tensor = torch.tensor(float(value), dtype=like_val.dtype)
    name = _new_buffer_name(gm)
    gm.register_buffer(name, tensor)
    with gm.graph.inserting_before(before):
        node = gm.graph.create_node("get_attr", name, (), {}, name=name)
    fake_mode = getattr(like_val, "fake_mode", None)
    node.meta["val"] = (
        fake_mode.from_tensor(tensor, static_shapes=True) if fake_mode is not None else tensor
    )
    return node


def convert_scalar_operands(
    gm: GraphModule,
    ops: frozenset[OpOverload],
    wanted: Callable[[Node], bool] = lambda node: True,
) -> GraphModule:
    """Rewrite, in place, the int/float scalar operands of every ``ops`` node that has one
    float tensor operand and that ``wanted`` accepts (see module docstring); returns ``gm``."""
    changed = False
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in ops or len(node.args) != 2:
            continue
        tensors = [a for a in node.args if isinstance(a, Node)]
        scalars = [a for a in node.args if isinstance(a, (int, float)) and not isinstance(a, bool)]
        if len(tensors) != 1 or len(scalars) != 1 or not is_float_tensor(tensors[0]):
            continue
        if not wanted(node):
            continue
        const = _constant_node(gm, node, scalars[0], tensors[0])
        node.args = tuple(a if isinstance(a, Node) else const for a in node.args)
        changed = True
    if changed:
        gm.recompile()
    return gm
