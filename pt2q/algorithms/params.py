"""Reading and replacing the constants (weights, biases) of weighted ops in an exported graph.

An exported ``GraphModule`` reads parameters with ``get_attr`` nodes. The algorithms never write
into a tensor: they set a new tensor on the attribute of the module they were given (a copy of
the user's model), so the user's model and the float weights it shares stay untouched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.fx import GraphModule, Node

__all__ = [
    "LINEAR",
    "CONV",
    "WEIGHTED",
    "get_param",
    "set_param",
    "weight_bias",
    "groups_of",
    "conv_geometry",
    "im2col_rows",
]

aten = torch.ops.aten
LINEAR = frozenset({aten.linear.default})
CONV = frozenset({aten.conv1d.default, aten.conv2d.default, aten.conv3d.default})
WEIGHTED = LINEAR | CONV


def _owner(gm: GraphModule, target: str) -> tuple[torch.nn.Module, str]:
    path, _, attr = target.rpartition(".")
    return (gm.get_submodule(path) if path else gm), attr


def get_param(gm: GraphModule, node: Node) -> torch.Tensor:
    """The tensor a ``get_attr`` node reads."""
    owner, attr = _owner(gm, str(node.target))
    value = getattr(owner, attr)
    assert isinstance(value, torch.Tensor), f"'{node.target}' is not a tensor"
    return value


def set_param(gm: GraphModule, node: Node, value: torch.Tensor) -> None:
    """Point ``node``'s attribute at a new tensor (a Parameter if it was one); never in place."""
    owner, attr = _owner(gm, str(node.target))
    old = getattr(owner, attr)
    new = value.detach().to(old.dtype).contiguous()
    if isinstance(old, torch.nn.Parameter):
        delattr(owner, attr)
        owner.register_parameter(attr, torch.nn.Parameter(new, requires_grad=old.requires_grad))
    elif attr in owner._buffers:
        owner._buffers[attr] = new
    else:
        setattr(owner, attr, new)


def _const(arg: object) -> Node | None:
    return arg if isinstance(arg, Node) and arg.op == "get_attr" else None


def weight_bias(node: Node) -> tuple[Node | None, Node | None]:
    """The ``get_attr`` nodes of a linear/conv's weight and bias (None if not plain constants)."""
    weight = _const(node.args[1]) if len(node.args) > 1 else None
    bias = _const(node.args[2]) if len(node.args) > 2 else _const(node.kwargs.get("bias"))
    return weight, bias


def groups_of(node: Node) -> int:
    """The ``groups`` argument of a conv node (1 for linear)."""
    if node.target in LINEAR:
        return 1
    groups = node.args[6] if len(node.args) > 6 else node.kwargs.get("groups", 1)
    assert isinstance(groups, int), f"{node.name}: groups={groups!r}"
    return groups


def _size_arg(node: Node, v: object) -> int | tuple[int, ...]:
    """A conv size argument (an int or a list of ints) as ``F.unfold`` takes it."""
    if isinstance(v, int):
        return v
    if isinstance(v, (list, tuple)) and all(isinstance(i, int) for i in v):
        return tuple(v)
    raise TypeError(f"{node.name}: expected an int or a list of ints as a conv size, found {v!r}")


def conv_geometry(
    node: Node,
) -> tuple[int | tuple[int, ...], int | tuple[int, ...], int | tuple[int, ...]]:
    """``(stride, padding, dilation)`` of an ``aten.conv*.default`` node (defaults 1, 0, 1)."""
    args = node.args
    stride = args[3] if len(args) > 3 else node.kwargs.get("stride", 1)
    padding = args[4] if len(args) > 4 else node.kwargs.get("padding", 0)
    dilation = args[5] if len(args) > 5 else node.kwargs.get("dilation", 1)
    return _size_arg(node, stride), _size_arg(node, padding), _size_arg(node, dilation)


def im2col_rows(node: Node, x: torch.Tensor, kernel: tuple[int, ...]) -> torch.Tensor:
    """Conv2d ``node``'s input matrix for input ``x``: one row per output position and image,
    (N * L, Cin * kh * kw), columns in the order of the weight flattened to (Cout, -1)."""
    stride, padding, dilation = conv_geometry(node)
    patches = F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)
    return patches.transpose(1, 2).reshape(-1, patches.shape[1])
