"""Small seeded models for the quantizer tests (each one exercises one recipe)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "ConvUnary",
    "ConvAddRelu",
    "LinearReluAdd",
    "ReusedReluBlock",
    "Linear3d",
    "Conv1dOnly",
    "ConvSame",
    "Precedence",
    "ConvPoolCat",
    "AttentionScores",
    "ConvTransposeRelu",
    "EmbeddingLinear",
]


class ConvUnary(nn.Module):
    """conv2d -> unary (relu, hardtanh, relu6, hardswish, silu, or any callable)."""

    def __init__(self, unary: nn.Module) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.unary = unary

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unary(self.conv(x))


class ConvAddRelu(nn.Module):
    """conv -> add(conv, identity) -> relu: the ResNet tail."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x) + x)


class LinearReluAdd(nn.Module):
    """linear -> relu -> add: add cannot be fused after the relu by x86 Inductor."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x)) + x


class ReusedReluBlock(nn.Module):
    """A ResNet basic block calling one nn.ReLU module twice (torchvision style)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class Linear3d(nn.Module):
    """linear on (B, T, C) input."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class Conv1dOnly(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ConvSame(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding="same")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


class _Sub(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class Precedence(nn.Module):
    """Four linears reachable by different rules: sub.fc (name+type), fc1 (type), a functional
    linear (function type), and a conv (global)."""

    def __init__(self) -> None:
        super().__init__()
        self.sub = _Sub()
        self.fc1 = nn.Linear(16, 16)
        self.w = nn.Parameter(torch.randn(16, 16))
        self.conv = nn.Conv1d(1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.sub(x)
        x = self.fc1(x)
        x = nn.functional.linear(x, self.w)
        return self.conv(x.unsqueeze(1))


class ConvPoolCat(nn.Module):
    """conv -> relu -> maxpool, cat of two conv branches, adaptive pool -> flatten -> linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.conv3 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)  # (N, 8, H/2, W/2)
        x = torch.cat([self.conv2(x), self.conv3(x)], 1)  # (N, 16, H/2, W/2)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class AttentionScores(nn.Module):
    """q/k projections and their matmul (the x86 matmul is opt-in)."""

    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(16, 16)
        self.k = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(self.q(x), self.k(x).transpose(-1, -2))


class ConvTransposeRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(4, 6, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.deconv(x))


class EmbeddingLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.fc = nn.Linear(16, 4)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.fc(self.emb(idx).mean(1))
