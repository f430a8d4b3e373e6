"""Fixtures for the debugger tests: models quantized once per module."""

from __future__ import annotations

import pytest
import torch
from dbg_models import ConvBnNet, batches, quantize_with_handles
from torch.fx import GraphModule


@pytest.fixture(scope="module")
def convbn() -> tuple[torch.export.ExportedProgram, GraphModule, list[torch.Tensor]]:
    """(float ep with handles, converted GraphModule, eval batches) of ConvBnNet."""
    calib = batches((4, 3, 8, 8), 4, seed=0)
    ep, quant = quantize_with_handles(ConvBnNet(), calib[0], calib)
    return ep, quant, batches((4, 3, 8, 8), 3, seed=1)
