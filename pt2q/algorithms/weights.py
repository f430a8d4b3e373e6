"""The quantized weights of a prepared (calibrated) model, as the algorithms after calibration
see them: which weighted op, its weight constant, its observer and the integer grid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.algorithms.params import WEIGHTED, get_param, weight_bias
from pt2q.convert.qdq import observer_of

__all__ = ["QuantizedWeight", "quantized_weights"]

_PER_CHANNEL = (torch.per_channel_affine, torch.per_channel_symmetric)


@dataclass
class QuantizedWeight:
    """One weighted op whose weight is observed by an integer observer."""

    op: Node  # the linear / conv node
    weight: Node  # the get_attr node of the float weight
    bias: Node | None  # the get_attr node of a float bias, if any
    scale: torch.Tensor  # broadcastable to the weight
    zero_point: torch.Tensor  # broadcastable to the weight
    quant_min: int
    quant_max: int
    dtype: torch.dtype

    def integers(self, w: torch.Tensor) -> torch.Tensor:
        """round-half-even(w / scale) + zero_point, clamped (float tensor)."""
        q = torch.round(w / self.scale) + self.zero_point
        return q.clamp(self.quant_min, self.quant_max)

    def dequantize(self, q: torch.Tensor) -> torch.Tensor:
        return (q - self.zero_point) * self.scale


def _const(gm: GraphModule, arg: object) -> Node | None:
    return arg if isinstance(arg, Node) and arg.op == "get_attr" else None


def quantized_weights(gm: GraphModule) -> list[QuantizedWeight]:
    """Every linear/conv of prepared ``gm`` whose weight is a constant behind an integer,
    static observer (observed now if calibration did not reach it)."""
    found = []
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target not in WEIGHTED or len(node.args) < 2:
            continue
        obs_node = node.args[1]
        # an observer module: its attributes are read by duck typing (Module types them as
        # Tensor | Module)
        obs: Any = observer_of(gm, obs_node) if isinstance(obs_node, Node) else None
        if obs is None or getattr(obs, "is_dynamic", False) or obs.dtype.is_floating_point:
            continue
        if getattr(obs, "granularity", None) is not None:
            continue  # affine (LLM scheme) observers: blocks, not a qscheme (pt2q.algorithms.gptq)
        assert isinstance(obs_node, Node)
        weight = _const(gm, obs_node.args[0])
        if weight is None:
            continue
        w = get_param(gm, weight).detach()
        if not obs.has_observed:
            obs(w)
        scale, zp = obs.calculate_qparams()
        shape = [1] * w.dim()
        if obs.qscheme in _PER_CHANNEL:
            shape[int(obs.ch_axis)] = -1
        bias = weight_bias(node)[1]  # arg 2, or the ``bias`` kwarg fold_bn gives a 2-arg conv
        found.append(
            QuantizedWeight(
                node,
                weight,
                bias,
                scale.float().reshape(shape),
                zp.float().reshape(shape),
                int(obs.quant_min),
                int(obs.quant_max),
                obs.dtype,
            )
        )
    return found
