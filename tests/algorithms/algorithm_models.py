"""Small models shared by the algorithm tests (seeded, float32, eval mode)."""

from __future__ import annotations

import torch
from torch import nn


class ConvChain(nn.Module):
    """conv -> relu6 -> depthwise conv -> relu -> 1x1 conv -> relu -> linear -> relu -> linear,
    with one output channel of the first conv 30x larger (what equalization fixes)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 16, 1)
        self.fc1 = nn.Linear(16 * 8 * 8, 32)
        self.fc2 = nn.Linear(32, 4)
        with torch.no_grad():
            self.conv.weight[0] *= 30
            self.pw.bias += 2.0  # positive pre-activations: bias absorption has work

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.relu6(self.conv(x))
        x = torch.relu(self.dw(x))
        x = torch.relu(self.pw(x))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


class OutlierBlock(nn.Module):
    """layer_norm -> (q, k) linears, with two activation channels 50x larger than the rest,
    and a residual read of a second layer_norm (smoothing must then insert a mul)."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ffn = nn.Linear(dim, dim)
        with torch.no_grad():
            self.ln.weight[:2] = 50.0
            self.ln2.weight[3] = 40.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln(x)
        y = self.q(h) + self.k(h)
        z = self.ln2(y)
        return self.ffn(z) + z


def conv_batches(n: int = 4) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(4, 3, 8, 8, generator=g) for _ in range(n)]


def token_batches(n: int = 4, dim: int = 32) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(4, 16, dim, generator=g) for _ in range(n)]


def exported(model: nn.Module, example: torch.Tensor) -> torch.fx.GraphModule:
    torch.manual_seed(0)
    return torch.export.export(model.eval(), (example,)).module()
