"""Behaviours 1 and 2 of issue 10: prepared / converted models keep torch's train()/eval()
guard (NotImplementedError) until allow_exported_model_train_eval lifts it, and in-place
dropout (``aten.dropout_``) switches mode like the out-of-place one."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from pt2q import (
    allow_exported_model_train_eval,
    convert_pt2e,
    move_exported_model_to_eval,
    move_exported_model_to_train,
    prepare_pt2e,
    prepare_qat_pt2e,
)
from pt2q.quantizers import XNNPACKQuantizer, get_symmetric_quantization_config

aten = torch.ops.aten


class LinearInplaceDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(self.fc(x), p=0.5, training=self.training, inplace=True)


def _exported(train: bool) -> tuple[torch.fx.GraphModule, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(8, 16)
    model = LinearInplaceDropout().train(train)
    return torch.export.export(model, (x,)).module(), x


@pytest.mark.parametrize("is_qat", [False, True], ids=["ptq", "qat"])
def test_prepared_and_converted_models_refuse_train_eval(is_qat: bool) -> None:
    gm, x = _exported(train=is_qat)
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_qat=is_qat))
    prepared = (prepare_qat_pt2e if is_qat else prepare_pt2e)(gm, quantizer)
    for call in (prepared.train, prepared.eval):
        with pytest.raises(NotImplementedError, match="move_exported_model_to_eval"):
            call()
    prepared(x)
    converted = convert_pt2e(prepared)
    with pytest.raises(NotImplementedError, match="allow_exported_model_train_eval"):
        converted.eval()
    allow_exported_model_train_eval(converted)
    converted.eval()  # lifted: now switches dropout in the graph
    assert not converted.training
    y = converted(x)
    assert torch.equal(y, converted(x))  # eval dropout: deterministic


def test_the_guard_is_the_callers_own_after_prepare() -> None:
    gm, _ = _exported(train=False)
    allow_exported_model_train_eval(gm)
    prepared = prepare_pt2e(gm, XNNPACKQuantizer().set_global(get_symmetric_quantization_config()))
    gm.eval()  # the user's model keeps what the user set
    with pytest.raises(NotImplementedError):
        prepared.eval()  # the new model starts guarded, as torchao's prepare leaves it


def _dropout_flags(gm: torch.fx.GraphModule) -> list[bool]:
    return [n.args[2] for n in gm.graph.nodes if n.target == aten.dropout_.default]


def test_inplace_dropout_switches_mode() -> None:
    gm, x = _exported(train=True)
    assert _dropout_flags(gm) == [True]
    move_exported_model_to_eval(gm)
    assert _dropout_flags(gm) == [False]
    y = gm(x)
    assert torch.equal(y, F.linear(x, gm.fc.weight, gm.fc.bias))  # identity in eval
    move_exported_model_to_train(gm)
    assert _dropout_flags(gm) == [True]
    torch.manual_seed(1)
    y = gm(x)
    dropped = float((y == 0).float().mean())
    assert 0.3 < dropped < 0.7  # p = 0.5 again (and p itself unchanged)
    assert [n.args[1] for n in gm.graph.nodes if n.target == aten.dropout_.default] == [0.5]
