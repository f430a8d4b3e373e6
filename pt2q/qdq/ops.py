"""The ``quantized_decomposed`` ops of the reference program, by role.

Every per-tensor, per-channel, per-channel-group and per-token quantize / dequantize and the
``choose_qparams`` ops are recognised by their namespace and schema name, so a new overload
(``.tensor``, ``.tensor2``) is covered without listing it.
"""

from __future__ import annotations

import operator

import torch
import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers quantized_decomposed)
from torch.fx import Node

__all__ = [
    "qd",
    "qdq_name",
    "is_qdq",
    "is_quantize",
    "is_dequantize",
    "is_choose_qparams",
    "is_compute",
]

qd = torch.ops.quantized_decomposed


def qdq_name(node: Node) -> str | None:
    """``"quantize_per_tensor"``, ``"dequantize_per_channel"``, ``"choose_qparams"``, ... for a
    ``quantized_decomposed`` call; None for any other node."""
    target = node.target
    if node.op != "call_function" or not isinstance(target, torch._ops.OpOverload):
        return None
    if target.namespace != "quantized_decomposed":
        return None
    return target._opname  # the schema name without namespace and overload


def is_qdq(node: Node) -> bool:
    """Whether ``node`` is a ``quantized_decomposed`` op (quantize, dequantize, choose_qparams)."""
    return qdq_name(node) is not None


def is_quantize(node: Node) -> bool:
    """Whether ``node`` is a ``quantized_decomposed.quantize_*`` op."""
    name = qdq_name(node)
    return name is not None and name.startswith("quantize_")


def is_dequantize(node: Node) -> bool:
    """Whether ``node`` is a ``quantized_decomposed.dequantize_*`` op."""
    name = qdq_name(node)
    return name is not None and name.startswith("dequantize_")


def is_choose_qparams(node: Node) -> bool:
    """Whether ``node`` computes qparams at run time (``choose_qparams*``)."""
    name = qdq_name(node)
    return name is not None and name.startswith("choose_qparams")


def is_compute(node: Node) -> bool:
    """A call that computes a value of the model: not a q/dq op, not a tuple ``getitem``."""
    if node.op not in ("call_function", "call_method", "call_module"):
        return False
    return not is_qdq(node) and node.target is not operator.getitem
