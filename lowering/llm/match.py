"""Reading the LLM linear patterns of a reference program (hand walk, drawn here), for every
backend.

Weight-only (``int8wo`` / ``int4wo``)::

    x (float) ------------------------------------------------------+
    w_q (get_attr int8) -> dequantize_per_channel(w_q, s, z, 0, ...) +--> aten.linear(., ., bias)
                        or dequantize_per_channel_group(w_q, s, z, qmin, qmax, int8, group) -+

Dynamic activations (``8da8w`` / ``8da4w``): ``x`` above is replaced by::

    x -> choose_qparams_per_token_asymmetric(x, int8) -> (s_x, z_x)
    x -> quantize_per_token(x, s_x, z_x, -128, 127, int8) -> dequantize_per_token(...) -> linear

:func:`llm_linear` reads one ``aten.linear`` node into an :class:`LlmLinear` or raises
:class:`NotLlm` saying why the node is not one of these patterns (a reason for the report).
Only reads the graph.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers quantized_decomposed)
from torch.fx import GraphModule, Node

__all__ = ["NotLlm", "WeightQ", "TokenQ", "LlmLinear", "llm_linear", "attr_value"]

qd = torch.ops.quantized_decomposed
aten = torch.ops.aten
_DQ_CHANNEL = qd.dequantize_per_channel.default
_DQ_GROUP = qd.dequantize_per_channel_group.default
_DQ_TOKEN = qd.dequantize_per_token.default
_Q_TOKEN = qd.quantize_per_token.default
_CHOOSE_TOKEN = qd.choose_qparams_per_token_asymmetric.default


class NotLlm(Exception):  # noqa: N818 - a control-flow signal carrying the reason
    """The linear is not an LLM weight pattern this lowering takes; the message says why."""


@dataclass(frozen=True)
class WeightQ:
    """A constant weight quantized per output channel (``group_size == in_features``) or per
    group of ``group_size`` input columns: ``w = (q - zero_point) * scale`` per group.

    ``q`` is (N, K) int8 or uint8 as stored; ``scale`` and ``zero_point`` are
    (N, K // group_size) (float64 scales; zero points float64, integers unless the program
    stores float zeros); ``bits`` is 4 for a 16-value range ([-8, 7], [0, 15]) and 8 for a
    wider one within int8 ([-128, 127], [-127, 127]).
    """

    node: Node  # the dequantize node
    q: torch.Tensor
    scale: torch.Tensor
    zero_point: torch.Tensor
    qmin: int
    qmax: int
    group_size: int

    @property
    def bits(self) -> int:
        return 4 if self.qmax - self.qmin == 15 else 8

    @property
    def per_channel(self) -> bool:
        return self.group_size == self.q.shape[1]


@dataclass(frozen=True)
class TokenQ:
    """The per-token dynamic quantization feeding a linear: its three nodes and the float input."""

    source: Node  # the float activation
    choose: Node
    quantize: Node
    dequantize: Node


@dataclass(frozen=True)
class LlmLinear:
    """One ``aten.linear`` of an LLM scheme: the float input it computes on, its weight, bias
    and (for ``8da*``) the per-token activation quantization in front of it."""

    node: Node
    x: Node  # what the linear reads: the float input, or dequantize_per_token's output
    weight: WeightQ
    bias: Node | None
    tokens: TokenQ | None

    @property
    def scheme(self) -> str:
        bits = self.weight.bits
        return f"8da{bits}w" if self.tokens is not None else f"int{bits}wo"


def attr_value(gm: GraphModule, node: object, what: str) -> torch.Tensor:
    """The tensor behind a ``get_attr`` node (NotLlm when ``node`` is computed at run time)."""
    if not isinstance(node, Node) or node.op != "get_attr":
        raise NotLlm(f"{what} {node} is not a constant (get_attr) of the program")
    obj: object = gm
    for part in str(node.target).split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, torch.Tensor):
        raise NotLlm(f"{what} {node.name} is a {type(obj).__name__}, expected a tensor")
    return obj


def _arg(node: Node, i: int, name: str, default: object) -> object:
    return node.args[i] if len(node.args) > i else node.kwargs.get(name, default)


def _weight(gm: GraphModule, node: object) -> WeightQ:
    if not isinstance(node, Node) or node.target not in (_DQ_CHANNEL, _DQ_GROUP):
        raise NotLlm(f"weight {node} is not dequantize_per_channel / _per_channel_group")
    q = attr_value(gm, node.args[0], "quantized weight")
    if q.dtype not in (torch.int8, torch.uint8) or q.dim() != 2:
        raise NotLlm(
            f"weight {node.name}: expected a 2-D int8 / uint8 constant, found {q.dtype} {q.dim()}-D"
        )
    n, k = q.shape
    scale = attr_value(gm, node.args[1], "weight scale").double()
    zp_node = node.args[2]
    zp = (
        torch.zeros_like(scale)
        if zp_node is None
        else attr_value(gm, zp_node, "weight zero point").double()
    )
    if node.target == _DQ_CHANNEL:
        axis, qmin, qmax = (int(v) for v in node.args[3:6])  # type: ignore[arg-type]  # literal ints
        if axis != 0:
            raise NotLlm(f"weight {node.name} is per-channel on axis {axis}, expected 0")
        group = k
    else:
        qmin, qmax = int(node.args[3]), int(node.args[4])  # type: ignore[arg-type]  # literal ints
        group = int(_arg(node, 6, "group_size", 128))  # type: ignore[call-overload]
        if _arg(node, 7, "output_dtype", torch.float32) != torch.float32:
            raise NotLlm(f"weight {node.name} dequantizes to a non-fp32 dtype")
    if k % group:
        raise NotLlm(f"weight {node.name}: in_features {k} is not a multiple of group {group}")
    if scale.numel() != n * (k // group) or zp.numel() != scale.numel():
        raise NotLlm(
            f"weight {node.name}: {scale.numel()} scales / {zp.numel()} zero points for "
            f"{n} x {k // group} groups"
        )
    int8 = q.dtype == torch.int8 and -128 <= qmin < qmax <= 127
    if qmax - qmin != 15 and not int8:
        raise NotLlm(f"weight {node.name}: range [{qmin}, {qmax}] is neither 4- nor 8-bit")
    return WeightQ(
        node, q, scale.reshape(n, k // group), zp.reshape(n, k // group), qmin, qmax, group
    )


def _tokens(x: object) -> TokenQ | None:
    """The per-token q/dq chain ending at ``x``, or None when ``x`` is a plain float input."""
    if not isinstance(x, Node):
        raise NotLlm(f"linear input {x} is not a node")
    if x.target != _DQ_TOKEN:
        if x.op == "call_function" and str(getattr(x.target, "namespace", "")) == (
            "quantized_decomposed"
        ):
            raise NotLlm(f"input {x.name} is {x.target}: a per-tensor int8 pattern, not an LLM one")
        return None
    q = x.args[0]
    if not isinstance(q, Node) or q.target != _Q_TOKEN:
        raise NotLlm(f"{x.name} does not dequantize a quantize_per_token")
    scale = q.args[1]
    if not (
        isinstance(scale, Node)
        and scale.target is operator.getitem
        and isinstance(scale.args[0], Node)
        and scale.args[0].target == _CHOOSE_TOKEN
    ):
        raise NotLlm(f"{q.name}'s qparams do not come from choose_qparams_per_token_asymmetric")
    if q.args[5] != torch.int8 or (q.args[3], q.args[4]) != (-128, 127):
        raise NotLlm(f"{q.name}: activations must be int8 [-128, 127]")
    return TokenQ(q.args[0], scale.args[0], q, x)  # type: ignore[arg-type]


def llm_linear(gm: GraphModule, node: Node) -> LlmLinear:
    """Read ``node`` (an ``aten.linear``) as an LLM pattern; NotLlm says why it is not one."""
    if node.target != aten.linear.default:
        raise NotLlm(f"{node.name} is {node.target}, not aten.linear")
    tokens = _tokens(node.args[0])
    weight = _weight(gm, node.args[1])
    bias = _arg(node, 2, "bias", None)
    if bias is not None and not isinstance(bias, Node):
        raise NotLlm(f"{node.name}: bias {bias!r} is not a node")
    return LlmLinear(node, node.args[0], weight, bias, tokens)  # type: ignore[arg-type]
