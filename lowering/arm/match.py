"""Small matchers over a converted (reference) graph: dequantized activations, int8 weights,
the optional ReLU and the quantize that closes a dq -> op -> q pattern.

::

    x_i8 -> dequantize_per_tensor -> OP (-> relu) -> quantize_per_tensor -> y_i8
    w_i8 (get_attr) -> dequantize_per_channel / per_tensor -^
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.fx import GraphModule, Node

__all__ = [
    "QDQ",
    "ActQ",
    "WeightQ",
    "NoMatch",
    "act_input",
    "weight_input",
    "output_q",
    "get_attr_value",
]

_qd = torch.ops.quantized_decomposed
QDQ = {
    "q": _qd.quantize_per_tensor.default,
    "dq": _qd.dequantize_per_tensor.default,
    "dq_ch": _qd.dequantize_per_channel.default,
}
_RELU = (torch.ops.aten.relu.default, torch.ops.aten.relu_.default)


class NoMatch(Exception):  # noqa: N818 - a control-flow signal carrying the reason
    """The node does not fit the pattern; the message says why (kept in the report)."""


@dataclass(frozen=True)
class ActQ:
    """An int8 activation: its int8 source node and per-tensor qparams."""

    node: Node
    scale: float
    zp: int
    qmin: int
    qmax: int


@dataclass(frozen=True)
class WeightQ:
    """An int8 weight constant with per-output-channel scales (zero points all 0)."""

    value: torch.Tensor  # int8, as stored
    scale: torch.Tensor  # float64, one per output channel (dim 0)


def get_attr_value(gm: GraphModule, node: Node) -> torch.Tensor:
    if node.op != "get_attr":
        raise NoMatch(f"{node.name} is a {node.op}, expected a get_attr constant")
    obj: object = gm
    for part in str(node.target).split("."):
        obj = getattr(obj, part)
    assert isinstance(obj, torch.Tensor)
    return obj


def _int8(dtype: object, what: str) -> None:
    if dtype != torch.int8:
        raise NoMatch(f"{what} is quantized to {dtype}, the kernels take torch.int8")


def act_input(arg: object) -> ActQ:
    """``arg`` must be ``dequantize_per_tensor(x_i8, scale, zp, qmin, qmax, int8)``."""
    if not isinstance(arg, Node) or arg.target != QDQ["dq"]:
        raise NoMatch(f"input {arg} is not a dequantize_per_tensor (float input)")
    x, scale, zp, qmin, qmax, dtype = arg.args[:6]
    _int8(dtype, f"input {arg.name}")
    if isinstance(scale, Node) or isinstance(zp, Node):
        raise NoMatch(f"input {arg.name} has tensor qparams (dynamic), expected literals")
    return ActQ(x, float(scale), int(zp), int(qmin), int(qmax))


def weight_input(gm: GraphModule, arg: object, out_channels: int) -> WeightQ:
    """``arg`` must dequantize a constant int8 weight, per channel on axis 0 or per tensor."""
    if not isinstance(arg, Node):
        raise NoMatch(f"weight {arg} is not a node")
    if arg.target == QDQ["dq_ch"]:
        w, scale, zp, axis, _qmin, _qmax, dtype = arg.args[:7]
        _int8(dtype, f"weight {arg.name}")
        if axis != 0:
            raise NoMatch(f"weight {arg.name} is per-channel on axis {axis}, expected 0")
        s = get_attr_value(gm, scale).double()
        z = get_attr_value(gm, zp)
    elif arg.target == QDQ["dq"]:
        w, scale, zp, _qmin, _qmax, dtype = arg.args[:6]
        _int8(dtype, f"weight {arg.name}")
        n = get_attr_value(gm, w).shape[0] if out_channels < 0 else out_channels
        s = torch.full((n,), float(scale), dtype=torch.float64)
        z = torch.tensor([int(zp)])
    else:
        raise NoMatch(f"weight {arg} is not dequantized from int8 (float weight)")
    if bool((z != 0).any()):
        raise NoMatch(f"weight {arg.name} has non-zero zero points, kernels need symmetric")
    return WeightQ(get_attr_value(gm, w), s)


def output_q(anchor: Node) -> tuple[ActQ, Node, bool]:
    """The quantize closing ``anchor`` (through an optional ReLU): (qparams with the ReLU
    folded into qmin, the quantize node, whether a ReLU was fused)."""
    users = list(anchor.users)
    if len(users) != 1:
        raise NoMatch(f"{anchor.name} has {len(users)} users, expected one quantize")
    node, relu = users[0], False
    if node.target in _RELU:
        relu = True
        if len(node.users) != 1:
            raise NoMatch(f"{node.name} has {len(node.users)} users, expected one quantize")
        node = next(iter(node.users))
    if node.target != QDQ["q"]:
        raise NoMatch(f"{anchor.name}'s output is not quantized (goes to {node.target})")
    _x, scale, zp, qmin, qmax, dtype = node.args[:6]
    _int8(dtype, f"output {node.name}")
    qmin = max(int(qmin), int(zp)) if relu else int(qmin)
    return ActQ(node, float(scale), int(zp), qmin, int(qmax)), node, relu
