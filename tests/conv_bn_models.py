"""Small conv/linear + BN models shared by the BN-folding and QAT graph-pass tests (seeded,
non-trivial BN)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["OpBn", "CASES", "make_case"]


class OpBn(nn.Module):
    """``relu(bn(op(x)))`` with random BN statistics and affine parameters."""

    def __init__(self, op: nn.Module, bn: nn.Module, relu: bool = True) -> None:
        super().__init__()
        self.op, self.bn, self.relu = op, bn, relu
        g = torch.Generator().manual_seed(3)
        c = bn.num_features
        with torch.no_grad():
            bn.running_mean.copy_(torch.randn(c, generator=g))
            bn.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            if bn.affine:
                bn.weight.copy_(torch.randn(c, generator=g))
                bn.bias.copy_(torch.randn(c, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.op(x))
        return torch.relu(y) if self.relu else y


# name -> (model factory, input shape)
CASES: dict[str, tuple[type | object, tuple[int, ...]]] = {
    "conv1d": (lambda: OpBn(nn.Conv1d(3, 4, 3), nn.BatchNorm1d(4)), (4, 3, 10)),
    "conv2d": (lambda: OpBn(nn.Conv2d(3, 4, 3, stride=2), nn.BatchNorm2d(4)), (4, 3, 9, 9)),
    "conv2d_same_no_bias": (
        lambda: OpBn(nn.Conv2d(3, 6, 3, padding="same", bias=False), nn.BatchNorm2d(6)),
        (4, 3, 8, 8),
    ),
    "conv2d_depthwise": (
        lambda: OpBn(nn.Conv2d(4, 4, 3, groups=4), nn.BatchNorm2d(4)),
        (4, 4, 6, 6),
    ),
    "conv_transpose1d": (
        lambda: OpBn(nn.ConvTranspose1d(3, 5, 3, stride=2), nn.BatchNorm1d(5)),
        (4, 3, 7),
    ),
    "conv_transpose2d_no_bias": (
        lambda: OpBn(nn.ConvTranspose2d(3, 4, 3, bias=False), nn.BatchNorm2d(4)),
        (4, 3, 5, 5),
    ),
    "conv2d_bn_eps_momentum": (  # non-default BN settings must be used, not 1e-5 / 0.1
        lambda: OpBn(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, eps=1e-2, momentum=0.3)),
        (4, 3, 6, 6),
    ),
    "conv2d_bn_no_affine": (  # gamma absent: scale = 1 / running_std
        lambda: OpBn(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, affine=False)),
        (4, 3, 6, 6),
    ),
    "linear_bn1d": (lambda: OpBn(nn.Linear(6, 5), nn.BatchNorm1d(5), relu=False), (8, 6)),
}


def make_case(name: str) -> tuple[nn.Module, torch.Tensor]:
    """A fresh seeded model (train mode) and an input for case ``name``."""
    torch.manual_seed(0)
    make, shape = CASES[name]
    model = make()  # type: ignore[operator]
    return model.train(), torch.randn(shape)
