"""Quantization-aware training passes (conv-bn simulated fusion and its fold at convert).

Interface used by ``prepare_qat_pt2e`` / ``convert_pt2e``; stubs until implemented.
"""

from __future__ import annotations

import torch

__all__ = ["fuse_conv_bn_qat", "fold_conv_bn_qat"]


def fuse_conv_bn_qat(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """After annotation: rewrite conv(+bn)(+relu) into the simulated-fusion training form,
    carrying the annotations over to the new nodes. In place; returns ``gm``."""
    return gm


def fold_conv_bn_qat(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """At convert, before observers become q/dq: fold the BN of the simulated-fusion form into
    the conv weight/bias. In place; returns ``gm``."""
    return gm
