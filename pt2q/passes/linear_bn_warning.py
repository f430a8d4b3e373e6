"""The warning for a linear + BatchNorm that is (correctly) left unfused.

Folding BN into a linear is valid only on ``(N, C)`` outputs: on an N-D input, BatchNorm1d
normalises dim 1 while the linear's features are the last dim. PTQ folding and QAT fusion both
skip such pairs and say so, with torchao's wording (``Not fusing linear+bn``), so filters
written for torchao keep working.
"""

from __future__ import annotations

import warnings

import torch
from torch.fx import Node

__all__ = ["LinearBnNotFusedWarning", "warn_linear_bn_not_fused"]


class LinearBnNotFusedWarning(UserWarning):
    """A linear + batch norm pair was left unfused because their dims differ."""


def warn_linear_bn_not_fused(linear: Node) -> None:
    """Warn that ``linear`` and the batch norm after it stay separate (input rank given)."""
    x = linear.args[0]
    val = x.meta.get("val") if isinstance(x, Node) else None
    rank = f"{val.dim()}-D" if isinstance(val, torch.Tensor) else "not 2-D"
    warnings.warn(
        f"Not fusing linear+bn for node '{linear.name}': the linear input is {rank}, so Linear "
        "(last dim) and BatchNorm (dim 1) normalise different dimensions; both stay as they are",
        LinearBnNotFusedWarning,
        stacklevel=2,
    )
