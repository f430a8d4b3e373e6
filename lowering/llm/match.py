"""Reading the LLM linear patterns of a reference program, for every backend.

Weight-only (``int8wo`` / ``int4wo``)::

    x (float) ------------------------------------------------------+
    w_q (get_attr int8) -> dequantize_per_channel(w_q, s, z, 0, ...) +--> aten.linear(., ., bias)
                        or dequantize_per_channel_group(w_q, s, z, qmin, qmax, int8, group) -+

Dynamic activations (``8da8w`` / ``8da4w``): ``x`` above is replaced by::

    x -> choose_qparams_per_token_asymmetric(x, int8) -> (s_x, z_x)
    x -> quantize_per_token(x, s_x, z_x, -128, 127, int8) -> dequantize_per_token(...) -> linear

The q/dq forms are read through ``pt2q.qdq`` (``weight_q``: the per-channel / per-group
``WeightQ``; ``token_q``: the per-token ``TokenQ``); this module adds what an LLM kernel needs
(constant 2-D int8 / uint8 weights, 4- or 8-bit ranges, int8 [-128, 127] tokens).
:func:`llm_linear` reads one ``aten.linear`` node into an :class:`LlmLinear` or raises
:class:`NotLlm` saying why the node is not one of these patterns (a reason for the report).
Only reads the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.fx import GraphModule, Node

from pt2q.qdq.engine import NoMatch
from pt2q.qdq.ops import is_qdq
from pt2q.qdq.views import TokenQ, token_q, weight_q

__all__ = ["NotLlm", "LlmWeight", "LlmLinear", "llm_linear", "attr_value"]

aten = torch.ops.aten


class NotLlm(Exception):  # noqa: N818 - a control-flow signal carrying the reason
    """The linear is not an LLM weight pattern this lowering takes; the message says why."""


@dataclass(frozen=True)
class LlmWeight:
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
class LlmLinear:
    """One ``aten.linear`` of an LLM scheme: the float input it computes on, its weight, bias
    and (for ``8da*``) the per-token activation quantization in front of it."""

    node: Node
    x: Node  # what the linear reads: the float input, or dequantize_per_token's output
    weight: LlmWeight
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


def _weight(gm: GraphModule, node: object) -> LlmWeight:
    view = weight_q(node)
    if view is None or view.axis is None:
        raise NotLlm(f"weight {node} is not dequantize_per_channel / _per_channel_group")
    name = view.dq.name
    q = attr_value(gm, view.qweight, "quantized weight")
    if q.dtype not in (torch.int8, torch.uint8) or q.dim() != 2:
        raise NotLlm(
            f"weight {name}: expected a 2-D int8 / uint8 constant, found {q.dtype} {q.dim()}-D"
        )
    n, k = q.shape
    scale = attr_value(gm, view.scale, "weight scale").double()
    zp = (
        torch.zeros_like(scale)
        if view.zero_point is None
        else attr_value(gm, view.zero_point, "weight zero point").double()
    )
    qmin, qmax = view.qmin, view.qmax
    if view.group_size is None:
        if view.axis != 0:
            raise NotLlm(f"weight {name} is per-channel on axis {view.axis}, expected 0")
        group = k
    else:
        group = view.group_size
        if view.out_dtype != torch.float32:
            raise NotLlm(f"weight {name} dequantizes to a non-fp32 dtype")
    if k % group:
        raise NotLlm(f"weight {name}: in_features {k} is not a multiple of group {group}")
    if scale.numel() != n * (k // group) or zp.numel() != scale.numel():
        raise NotLlm(
            f"weight {name}: {scale.numel()} scales / {zp.numel()} zero points for "
            f"{n} x {k // group} groups"
        )
    int8 = q.dtype == torch.int8 and -128 <= qmin < qmax <= 127
    if qmax - qmin != 15 and not int8:
        raise NotLlm(f"weight {name}: range [{qmin}, {qmax}] is neither 4- nor 8-bit")
    return LlmWeight(
        view.dq, q, scale.reshape(n, k // group), zp.reshape(n, k // group), qmin, qmax, group
    )


def _tokens(x: object) -> TokenQ | None:
    """The per-token q/dq chain ending at ``x``, or None when ``x`` is a plain float input."""
    if not isinstance(x, Node):
        raise NotLlm(f"linear input {x} is not a node")
    try:
        tokens = token_q(x)
    except NoMatch as e:
        raise NotLlm(str(e)) from None
    if tokens is None:
        if is_qdq(x):
            raise NotLlm(f"input {x.name} is {x.target}: a per-tensor int8 pattern, not an LLM one")
        return None
    if tokens.dtype != torch.int8 or (tokens.qmin, tokens.qmax) != (-128, 127):
        raise NotLlm(f"{tokens.q.name}: activations must be int8 [-128, 127]")
    return tokens


def llm_linear(gm: GraphModule, node: Node) -> LlmLinear:
    """Read ``node`` (an ``aten.linear``) as an LLM pattern; NotLlm says why it is not one."""
    if node.target != aten.linear.default:
        raise NotLlm(f"{node.name} is {node.target}, not aten.linear")
    tokens = _tokens(node.args[0])
    weight = _weight(gm, node.args[1])
    bias = node.args[2] if len(node.args) > 2 else node.kwargs.get("bias")
    if bias is not None and not isinstance(bias, Node):
        raise NotLlm(f"{node.name}: bias {bias!r} is not a node")
    return LlmLinear(node, node.args[0], weight, bias, tokens)  # type: ignore[arg-type]
