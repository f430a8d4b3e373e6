"""End to end QAT with pt2q's quantizers on the digits CNN (conv-bn-relu x3, linear x2):
prepare_qat_pt2e -> 20 training steps (observers frozen for the last 4) -> eval -> convert_pt2e.
Checks the prepared and converted structure and the accuracy against float."""

from __future__ import annotations

import copy

import pytest
import torch
from digits import accuracy, digits_data, trained_digits_cnn

from pt2q.export_utils import move_exported_model_to_eval, move_exported_model_to_train
from pt2q.fake_quantize import disable_observer
from pt2q.quantize_pt2e import convert_pt2e, prepare_qat_pt2e
from pt2q.quantizer import Quantizer
from pt2q.quantizers.x86_inductor_quantizer import (
    X86InductorQuantizer,
    get_default_x86_inductor_quantization_config,
)
from pt2q.quantizers.xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config

aten = torch.ops.aten
qd = torch.ops.quantized_decomposed

# Issue 7: 20 QAT fine-tuning steps keep the accuracy within 0.5 points of float.
MAX_ACCURACY_DROP_POINTS = 0.5
N_CONV = 3


def _xnnpack() -> Quantizer:
    return XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_qat=True)
    )


def _x86() -> Quantizer:
    return X86InductorQuantizer().set_global(
        get_default_x86_inductor_quantization_config(is_qat=True)
    )


def _bn_nodes(gm: torch.fx.GraphModule) -> list[torch.fx.Node]:
    return [n for n in gm.graph.nodes if n.target is aten.batch_norm.default]


@pytest.mark.parametrize("make_quantizer", [_xnnpack, _x86], ids=["xnnpack_per_channel", "x86"])
def test_digits_qat_20_steps(make_quantizer) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    x_train, y_train, x_test, y_test = digits_data()
    model = trained_digits_cnn()
    float_accuracy = accuracy(model, x_test, y_test)
    batch = torch.export.Dim("batch")
    exported = torch.export.export(
        copy.deepcopy(model).train(), (x_train[:64],), dynamic_shapes={"x": {0: batch}}
    ).module()
    prepared = prepare_qat_pt2e(exported, make_quantizer())

    # Prepared: every conv reads fake_quant(W * bn_scale), without bias; the 3 BNs stay, in train.
    convs = [n for n in prepared.graph.nodes if n.target is aten.conv2d.default]
    assert len(convs) == N_CONV
    for conv in convs:
        fq = conv.args[1]
        assert fq.op == "call_module" and fq.args[0].target is aten.mul.Tensor, conv.format_node()
        assert conv.args[2] is None
    assert [n.args[5] for n in _bn_nodes(prepared)] == [True] * N_CONV

    opt = torch.optim.SGD(prepared.parameters(), lr=1e-3, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    for step in range(20):
        if step == 16:
            prepared.apply(disable_observer)  # freeze the qparams for the last steps
        idx = torch.randint(0, len(y_train), (64,), generator=gen)
        loss = torch.nn.functional.cross_entropy(prepared(x_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.isfinite(loss)

    # Eval switching keeps BN momentum / eps exactly; back and forth is the identity on them.
    settings = [n.args[6:8] for n in _bn_nodes(prepared)]
    move_exported_model_to_train(move_exported_model_to_eval(prepared))
    move_exported_model_to_eval(prepared)
    assert [n.args[6:8] for n in _bn_nodes(prepared)] == settings
    assert [n.args[5] for n in _bn_nodes(prepared)] == [False] * N_CONV

    converted = convert_pt2e(prepared)
    targets = [n.target for n in converted.graph.nodes if n.op == "call_function"]
    assert not _bn_nodes(converted)
    assert aten.mul.Tensor not in targets and aten.div.Tensor not in targets
    for conv in (n for n in converted.graph.nodes if n.target is aten.conv2d.default):
        w_dq, bias = conv.args[1], conv.args[2]
        assert w_dq.target is qd.dequantize_per_channel.default, conv.format_node()
        assert bias is not None and bias.op == "get_attr"
    assert targets.count(qd.dequantize_per_channel.default) == N_CONV + 2  # + 2 linears

    qat_accuracy = accuracy(converted, x_test, y_test)
    assert qat_accuracy >= float_accuracy - MAX_ACCURACY_DROP_POINTS, (
        f"QAT accuracy {qat_accuracy:.2f} vs float {float_accuracy:.2f}"
    )
