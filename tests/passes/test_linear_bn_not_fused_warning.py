"""Behaviour 3 of issue 10: linear + BatchNorm1d on an N-D input stays unfused (correctly) and
says so with torchao's wording, in PTQ (BN folding) and QAT (conv/linear-bn fusion)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from pt2q import prepare_pt2e, prepare_qat_pt2e
from pt2q.passes.linear_bn_warning import LinearBnNotFusedWarning
from pt2q.quantizers import XNNPACKQuantizer, get_symmetric_quantization_config


class LinearBn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.bn = nn.BatchNorm1d(6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.fc(x))


def _prepare(x: torch.Tensor, is_qat: bool) -> list[warnings.WarningMessage]:
    model = LinearBn().train(is_qat)
    gm = torch.export.export(model, (x,)).module()
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_qat=is_qat))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (prepare_qat_pt2e if is_qat else prepare_pt2e)(gm, quantizer)
    return [w for w in caught if issubclass(w.category, LinearBnNotFusedWarning)]


@pytest.mark.parametrize("is_qat", [False, True], ids=["ptq", "qat"])
def test_3d_input_warns(is_qat: bool) -> None:
    # (N, 6, 6): BatchNorm1d normalises dim 1, the linear works on the last dim
    [warning] = _prepare(torch.randn(4, 6, 6), is_qat)
    assert "Not fusing linear+bn for node 'linear'" in str(warning.message)
    assert "3-D" in str(warning.message)


@pytest.mark.parametrize("is_qat", [False, True], ids=["ptq", "qat"])
def test_2d_input_fuses_silently(is_qat: bool) -> None:
    assert _prepare(torch.randn(4, 6), is_qat) == []
