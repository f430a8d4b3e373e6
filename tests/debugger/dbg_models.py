"""Small seeded models and the float -> quantized pipeline shared by the debugger tests."""

from __future__ import annotations

import torch
from dbg_toy_quantizer import ToyQuantizer
from torch import nn
from torch.fx import GraphModule

from pt2q.debugger import generate_numeric_debug_handle
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e

__all__ = ["ConvBnNet", "Mlp", "batches", "quantize_with_handles"]


class ConvBnNet(nn.Module):
    """conv -> bn (non-trivial running stats) -> relu -> mean -> fc."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 5)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-1.0, 1.0)
            self.bn.running_var.uniform_(0.2, 3.0)
            self.bn.weight.uniform_(0.5, 2.0)
            self.bn.bias.uniform_(-1.0, 1.0)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))  # (N, 8, H-2, W-2)
        return self.fc(x.mean((2, 3)))  # (N, 5)


class Mlp(nn.Module):
    """fc1 -> relu -> fc2 -> relu -> fc3; ``outlier`` scales one output row of fc2 by 100."""

    def __init__(self, outlier: bool = False) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 32)
        self.fc3 = nn.Linear(32, 8)
        if outlier:
            with torch.no_grad():
                self.fc2.weight[3] *= 100.0  # one huge activation channel: per-tensor act quant
                self.fc3.weight[:, 3] /= 100.0  # keeps the float function's scale similar
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


def batches(shape: tuple[int, ...], n: int, seed: int = 0) -> list[torch.Tensor]:
    """``n`` seeded standard-normal batches of ``shape``."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen) for _ in range(n)]


def quantize_with_handles(
    model: nn.Module, example: torch.Tensor, calib: list[torch.Tensor]
) -> tuple[torch.export.ExportedProgram, GraphModule]:
    """Export, add handles, prepare with ToyQuantizer, calibrate, convert."""
    ep = torch.export.export(model, (example,))
    generate_numeric_debug_handle(ep)
    prepared = prepare_pt2e(ep.module(), ToyQuantizer())
    with torch.no_grad():
        for x in calib:
            prepared(x)
    return ep, convert_pt2e(prepared)
