"""Small seeded models and the pt2q PTQ flow used by the x86 lowering tests."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.fx import GraphModule

from pt2q.lowering.x86 import detect_isa
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizers.x86_inductor_quantizer import (
    X86InductorQuantizer,
    get_default_x86_inductor_quantization_config,
)

qd = torch.ops.quantized_decomposed


def quantize(
    model: nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    dynamic_shapes: Any = None,
    reduce_range: bool | None = None,
    token_dynamic: bool = False,
) -> GraphModule:
    """Export, annotate with X86InductorQuantizer, calibrate on the example inputs, convert.

    ``reduce_range`` defaults to what this CPU needs for exact oneDNN kernels (True without
    VNNI), like a user following the quantizer's documentation. ``token_dynamic``: the
    quantizer's per-token dynamic linears (its default); off, every linear has torchao's static
    input, whose oneDNN mechanics most of these tests check.
    """
    if reduce_range is None:
        reduce_range = not detect_isa().exact_u8s8
    ep = torch.export.export(model.eval(), example_inputs, dynamic_shapes=dynamic_shapes)
    quantizer = X86InductorQuantizer().set_token_dynamic_linears(token_dynamic)
    quantizer.set_global(get_default_x86_inductor_quantization_config(reduce_range=reduce_range))
    prepared = prepare_pt2e(ep.module(), quantizer)
    with torch.no_grad():
        prepared(*example_inputs)
    return convert_pt2e(prepared)


def last_quantize_scale(gm: GraphModule) -> float:
    """Scale of the last quantize_per_tensor in graph order: the step of the final int8 value."""
    scales = [
        float(n.args[1])
        for n in gm.graph.nodes
        if n.op == "call_function" and n.target == qd.quantize_per_tensor.default
    ]
    if not scales:
        raise AssertionError("last_quantize_scale: the graph has no quantize_per_tensor node")
    return scales[-1]


def sqnr_db(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio of ``actual`` against ``expected``, in dB."""
    noise = (actual.double() - expected.double()).pow(2).sum()
    signal = expected.double().pow(2).sum()
    if noise == 0:
        return float("inf")
    return float(10 * torch.log10(signal / noise))


class MLP3d(nn.Module):
    """Transformer-style 3-D linears: (B, T, 64) -> 128 -> 64, then linear -> relu -> add."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Linear(64, 128)
        self.down = nn.Linear(128, 64)
        self.proj = nn.Linear(64, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, T, 64)
        h = self.down(torch.relu(self.up(x)))
        return torch.relu(self.proj(h)) + h


class SmallCNN(nn.Module):
    """conv -> relu, residual conv add, max-pool, avg-pool, cat, flatten -> linear (2-D)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.body = nn.Conv2d(16, 16, 3, padding=1)
        self.side = nn.Conv2d(16, 8, 1)
        self.fc = nn.Linear(24 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, 3, 8, 8)
        a = torch.relu(self.stem(x))
        b = torch.relu(self.body(a) + a)  # residual add, fused into the conv
        c = torch.cat([torch.max_pool2d(b, 2), nn.functional.avg_pool2d(self.side(b), 2)], dim=1)
        return self.fc(torch.flatten(c, 1))  # (N, 24*4*4) -> (N, 10)


class TinyLinear(nn.Module):
    """Two 2-D linears with a relu, for dynamic-batch and save/load tests."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(32, 64)
        self.b = nn.Linear(64, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, 32)
        return self.b(torch.relu(self.a(x)))


class _BasicBlock(nn.Module):
    """ResNet basic block: conv-bn-relu, conv-bn, + identity, relu (BN folds at prepare)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + x)  # conv + add + relu: the binary kernel


class ResidualNet(nn.Module):
    """A small ResNet: stem conv, ``blocks`` basic blocks of 16 channels, mean pool, linear.

    Its BatchNorm statistics are drawn at random (seeded by the caller) so folding is not a
    no-op; input (N, 3, 8, 8) -> (N, 10).
    """

    def __init__(self, blocks: int = 3) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.blocks = nn.Sequential(*(_BasicBlock(16) for _ in range(blocks)))
        self.fc = nn.Linear(16, 10)
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 2.0)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, 3, H, W)
        x = self.blocks(torch.relu(self.stem(x)))
        return self.fc(x.mean((2, 3)))  # (N, 16) -> (N, 10)
