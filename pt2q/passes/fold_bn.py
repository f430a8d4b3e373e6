"""Fold eval-mode batch norm into the preceding conv / linear (PTQ prepare).

Interface used by ``prepare_pt2e``; implemented by the QAT/BN work (stub until then).
"""

from __future__ import annotations

import torch

__all__ = ["fold_bn_into_preceding_op"]


def fold_bn_into_preceding_op(gm: torch.fx.GraphModule) -> bool:
    """Fold every conv(1d/2d/transpose)+BN and linear+BN1d (2-D input) in ``gm`` in place.

    Returns whether the graph changed.
    """
    return False
