"""The batch-norm folding formulas, on tensors (no graph).

For a BN with statistics (mean, var), affine (gamma, beta) and eps, applied to ``y = op(x, W) + b``
with C output channels:

    scale = gamma / sqrt(var + eps)                        # (C,)
    W'    = W * scale  along the output-channel axis        # conv: axis 0; transposed: axis 1
    b'    = (b - mean) * scale + beta                       # b = 0 when the op has no bias

so that ``BN(op(x, W) + b) == op(x, W') + b'`` in eval mode. The same ``scale`` is the factor the
QAT simulated-fusion form multiplies the weight by (``pt2q.qat.fuse``).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["bn_scale", "scale_weight", "fold_bn_weights"]


def bn_scale(running_var: Tensor, eps: float, bn_weight: Tensor | None) -> Tensor:
    """``gamma / sqrt(var + eps)`` (``1 / sqrt(var + eps)`` when the BN has no affine weight)."""
    inv_std = torch.rsqrt(running_var + eps)
    return inv_std if bn_weight is None else bn_weight * inv_std


def scale_weight(weight: Tensor, scale: Tensor, kind: str, groups: int) -> Tensor:
    """A new tensor: ``weight`` with output channel ``c`` multiplied by ``scale[c]``.

    ``kind`` is "conv", "linear" (weight ``(C_out, ...)``) or "conv_transpose" (weight
    ``(C_in, C_out / groups, *k)``: output channel ``g * C_out/groups + j`` lives in group ``g``,
    column ``j``).
    """
    if kind != "conv_transpose":
        return weight * scale.reshape([-1] + [1] * (weight.dim() - 1))
    c_in, c_out_g = weight.shape[0], weight.shape[1]
    kernel = list(weight.shape[2:])
    grouped = weight.reshape([groups, c_in // groups, c_out_g] + kernel)  # (g, Cin/g, Cout/g, *k)
    factor = scale.reshape([groups, 1, c_out_g] + [1] * len(kernel))
    return (grouped * factor).reshape(weight.shape)


def fold_bn_weights(
    weight: Tensor,
    bias: Tensor | None,
    bn_weight: Tensor | None,
    bn_bias: Tensor | None,
    running_mean: Tensor,
    running_var: Tensor,
    eps: float,
    kind: str,
    groups: int,
) -> tuple[Tensor, Tensor]:
    """``(W', b')`` as new tensors (the inputs are never written to); see the module docstring."""
    with torch.no_grad():
        scale = bn_scale(running_var, eps, bn_weight)
        new_weight = scale_weight(weight, scale.to(weight.dtype), kind, groups)
        b = torch.zeros_like(running_mean) if bias is None else bias
        new_bias = (b - running_mean) * scale
        if bn_bias is not None:
            new_bias = new_bias + bn_bias
    return new_weight.detach().clone(), new_bias.to(weight.dtype).detach().clone()
