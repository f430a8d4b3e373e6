"""Each spec kind through prepare/convert: exact observer / q-dq counts and the qparams used."""

from __future__ import annotations

import pytest
import torch
from core_quantizer import ACT, SIGMOID_OUT, WEIGHT, CoreQuantizer
from graph_text import call_sequence, count_ops
from torch import nn
from torch.fx import GraphModule, Node

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.quantizer import (
    QuantizationAnnotation,
    QuantizationSpec,
    Quantizer,
    SharedQuantizationSpec,
)

aten = torch.ops.aten
qd = torch.ops.quantized_decomposed


def export(model: nn.Module, *args: torch.Tensor, **kwargs: torch.Tensor) -> GraphModule:
    return torch.export.export(model.eval(), args, kwargs).module()


def observers(gm: GraphModule) -> list[str]:
    """Observer module called by each call_module node, in graph order."""
    return [
        str(n.target) for n in gm.graph.nodes if n.op == "call_module" and n.target != "_guards_fn"
    ]


class FnQuantizer(Quantizer):
    """Annotates with a user function (node -> None)."""

    def __init__(self, fn) -> None:  # type: ignore[no-untyped-def]
        self.fn = fn

    def annotate(self, model: GraphModule) -> GraphModule:
        for node in list(model.graph.nodes):
            self.fn(node)
        return model

    def validate(self, model: GraphModule) -> None:
        return None


def annotate(node: Node, inputs: dict, output=None) -> None:  # type: ignore[no-untyped-def, type-arg]
    node.meta["quantization_annotation"] = QuantizationAnnotation(
        input_qspec_map=inputs, output_qspec=output, _annotated=True
    )


class AddCat(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([a + 1.0, b * 2.0], dim=1)


def test_transitive_sharing_makes_one_observer() -> None:
    """cat's second input shares the first, its output shares the second: one group."""

    def fn(node: Node) -> None:
        if node.target == aten.cat.default:
            a, b = node.args[0]
            annotate(
                node,
                {a: ACT, b: SharedQuantizationSpec((a, node))},
                SharedQuantizationSpec((b, node)),
            )

    gm = prepare_pt2e(export(AddCat(), torch.randn(2, 3), torch.randn(2, 3)), FnQuantizer(fn))
    assert observers(gm) == ["activation_post_process_0"] * 3
    gm(torch.randn(2, 3), torch.randn(2, 3))
    conv = convert_pt2e(gm)
    qs = [n for n in conv.graph.nodes if n.target == qd.quantize_per_tensor.default]
    assert len(qs) == 3 and len({q.args[1:] for q in qs}) == 1


def test_implicit_sharing_with_producer_output() -> None:
    """Equal specs on an output and on the next input edge share one observer."""

    def fn(node: Node) -> None:
        if node.target == aten.add.Tensor:
            annotate(node, {node.args[0]: ACT}, ACT)
        elif node.target == aten.mul.Tensor:
            annotate(node, {node.args[0]: ACT}, ACT)

    class M(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x + 1.0) * 2.0

    gm = prepare_pt2e(export(M(), torch.randn(4)), FnQuantizer(fn))
    # x edge, add output (== mul input edge), mul output
    assert observers(gm) == [
        "activation_post_process_2",
        "activation_post_process_0",
        "activation_post_process_1",
    ]


def test_different_specs_do_not_share() -> None:
    act_int8 = QuantizationSpec(torch.int8, ACT.observer_or_fake_quant_ctr, -128, 127)

    def fn(node: Node) -> None:
        if node.target == aten.add.Tensor:
            annotate(node, {}, ACT)
        elif node.target == aten.mul.Tensor:
            annotate(node, {node.args[0]: act_int8})

    class M(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x + 1.0) * 2.0

    gm = prepare_pt2e(export(M(), torch.randn(4)), FnQuantizer(fn))
    gm(torch.randn(4))
    seq = [t for t in call_sequence(convert_pt2e(gm)) if t.startswith("qd.")]
    # add output: uint8 q/dq, then the mul input edge re-quantized to int8
    assert seq == ["qd.quantize_per_tensor", "qd.dequantize_per_tensor"] * 2


def test_two_consumers_with_equal_edge_specs_share_and_get_their_own_dequantize() -> None:
    def fn(node: Node) -> None:
        if node.target in (aten.relu.default, aten.sigmoid.default):
            annotate(node, {node.args[0]: ACT})

    class M(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.relu(x), torch.sigmoid(x)

    gm = prepare_pt2e(export(M(), torch.randn(4)), FnQuantizer(fn))
    assert observers(gm) == ["activation_post_process_0"]
    gm(torch.randn(4))
    counts = count_ops(convert_pt2e(gm))
    assert counts["qd.quantize_per_tensor"] == 1
    assert counts["qd.dequantize_per_tensor"] == 2


def test_derived_bias_scale_is_act_scale_times_weight_scale_per_channel() -> None:
    torch.manual_seed(0)
    model = nn.Linear(6, 5)
    gm = prepare_pt2e(export(model, torch.randn(3, 6)), CoreQuantizer())
    gm(torch.randn(3, 6))
    conv = convert_pt2e(gm)
    lin = next(n for n in conv.graph.nodes if n.target == aten.linear.default)
    x_dq, w_dq, b_dq = lin.args
    act_scale = x_dq.args[1]
    w_scale = getattr(conv, w_dq.args[1].target)
    b_scale = getattr(conv, b_dq.args[1].target)
    torch.testing.assert_close(b_scale, act_scale * w_scale)
    assert b_dq.args[6] == torch.int32 and getattr(conv, b_dq.args[0].target).dtype == torch.int32


def test_fixed_qparams_in_ptq() -> None:
    class M(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(x)

    gm = prepare_pt2e(export(M(), torch.randn(4)), CoreQuantizer())
    gm(torch.randn(4))
    conv = convert_pt2e(gm)
    sig = next(n for n in conv.graph.nodes if n.target == aten.sigmoid.default)
    q = next(iter(sig.users))
    assert q.args[1:] == (SIGMOID_OUT.scale, 0, 0, 255, torch.uint8)


def test_dynamic_spec_chooses_qparams_at_run_time() -> None:
    torch.manual_seed(0)
    model = nn.Linear(8, 4)
    gm = prepare_pt2e(export(model, torch.randn(2, 8)), CoreQuantizer(dynamic=True))
    conv = convert_pt2e(gm)  # dynamic activations need no calibration
    seq = call_sequence(conv)
    assert seq == [
        "qd.choose_qparams.tensor",
        "getitem",
        "getitem",
        "qd.quantize_per_tensor.tensor",
        "qd.dequantize_per_channel",
        "qd.dequantize_per_tensor.tensor",
        "linear",
    ]
    x = torch.randn(2, 8) * 10  # a range never seen before
    y = conv(x)
    assert float((y - model(x)).abs().max()) < 0.2


def test_transform_for_annotation_and_callback_are_called() -> None:
    q = CoreQuantizer()
    gm = prepare_pt2e(export(nn.Linear(4, 4), torch.randn(1, 4)), q)
    assert q.transform_calls == 1
    assert len(q.callback_keys) == 4  # x edge, weight edge, bias edge, output
    assert gm is not None


def test_callback_can_replace_an_observer() -> None:
    from pt2q.observer import MinMaxObserver

    class Replacing(CoreQuantizer):
        def prepare_obs_or_fq_callback(self, model, mapping):  # type: ignore[no-untyped-def]
            for key in mapping:
                if isinstance(key, Node):  # outputs: a fixed narrow observer
                    mapping[key] = MinMaxObserver(quant_min=0, quant_max=15)

    gm = prepare_pt2e(export(nn.Linear(4, 4), torch.randn(1, 4)), Replacing())
    gm(torch.randn(1, 4))
    conv = convert_pt2e(gm)
    lin = next(n for n in conv.graph.nodes if n.target == aten.linear.default)
    assert next(iter(lin.users)).args[3:5] == (0, 15)


def test_kwargs_inputs() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor, *, scale: torch.Tensor) -> torch.Tensor:
            return self.fc(x) * scale

    gm = prepare_pt2e(export(M(), torch.randn(2, 4), scale=torch.randn(2, 4)), CoreQuantizer())
    gm(torch.randn(2, 4), scale=torch.randn(2, 4))
    conv = convert_pt2e(gm)
    assert count_ops(conv)["qd.quantize_per_tensor"] == 2
    conv(torch.randn(2, 4), scale=torch.randn(2, 4))


def test_in_place_ops() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.act = nn.ReLU(inplace=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.fc(x)
            y.add_(1.0)
            return self.act(y)

    torch.manual_seed(0)
    model = M()
    gm = prepare_pt2e(export(model, torch.randn(2, 4)), CoreQuantizer())
    gm(torch.randn(2, 4))
    conv = convert_pt2e(gm)
    x = torch.randn(2, 4)
    torch.testing.assert_close(conv(x), model(x), atol=0.1, rtol=0)


@pytest.mark.parametrize(
    "weight_spec",
    [
        pytest.param(WEIGHT, id="per_channel"),
        pytest.param(
            QuantizationSpec(
                torch.int8, WEIGHT.observer_or_fake_quant_ctr, -127, 127, torch.per_tensor_symmetric
            ),
            id="per_tensor",
        ),
    ],
)
def test_weight_quantization_is_folded(weight_spec: QuantizationSpec) -> None:
    def fn(node: Node) -> None:
        if node.target == aten.linear.default:
            annotate(node, {node.args[0]: ACT, node.args[1]: weight_spec}, ACT)

    gm = prepare_pt2e(export(nn.Linear(4, 3), torch.randn(1, 4)), FnQuantizer(fn))
    gm(torch.randn(1, 4))
    seq = [t for t in call_sequence(convert_pt2e(gm)) if t.startswith("qd.")]
    w_dq = (
        "qd.dequantize_per_channel"
        if weight_spec.ch_axis is not None
        else "qd.dequantize_per_tensor"
    )
    assert seq == [
        "qd.quantize_per_tensor",
        w_dq,
        "qd.dequantize_per_tensor",
        "qd.quantize_per_tensor",
        "qd.dequantize_per_tensor",
    ]


def test_fixed_qparams_in_qat() -> None:
    from pt2q import prepare_qat_pt2e
    from pt2q.fake_quantize import FixedQParamsFakeQuantize

    class M(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(x)

    gm = prepare_qat_pt2e(export(M(), torch.randn(4)), CoreQuantizer())
    fixed = [m for m in gm.modules() if isinstance(m, FixedQParamsFakeQuantize)]
    assert len(fixed) == 1
    x = torch.linspace(-4, 4, 4)
    # training output is already on the fixed grid: multiples of 1/256
    y = gm(x)
    torch.testing.assert_close(y * 256, torch.round(y * 256), rtol=0, atol=1e-4)
    conv = convert_pt2e(gm)
    sig = next(n for n in conv.graph.nodes if n.target == aten.sigmoid.default)
    assert next(iter(sig.users)).args[1:] == (SIGMOID_OUT.scale, 0, 0, 255, torch.uint8)


def test_observer_with_its_own_convert_emits_its_ops() -> None:
    from pt2q.observer import MinMaxObserver

    class ClampingObserver(MinMaxObserver):
        """Converts to a clamp to the observed range instead of q/dq."""

        def convert(self, model: GraphModule, node: Node) -> None:
            with model.graph.inserting_before(node):
                clamp = model.graph.call_function(
                    aten.clamp.default, (node.args[0], float(self.min_val), float(self.max_val))
                )
            node.replace_all_uses_with(clamp)
            model.graph.erase_node(node)

    spec = QuantizationSpec(torch.uint8, ClampingObserver)

    def fn(node: Node) -> None:
        if node.target == aten.relu.default:
            annotate(node, {}, spec)

    class M(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x)

    gm = prepare_pt2e(export(M(), torch.randn(4)), FnQuantizer(fn))
    gm(torch.tensor([-1.0, 0.5, 2.0, 0.0]))
    conv = convert_pt2e(gm)
    assert call_sequence(conv) == ["relu", "clamp"]
    assert conv(torch.tensor([5.0, 1.0, 0.0, 0.0])).tolist() == [2.0, 1.0, 0.0, 0.0]


def test_weight_observers_observe_once_in_ptq_but_every_step_in_qat() -> None:
    from pt2q import prepare_qat_pt2e

    def flags(gm: GraphModule) -> dict[str, bool]:
        return {
            str(n.args[0]): gm.get_submodule(str(n.target)).observes_constant
            for n in gm.graph.nodes
            if n.op == "call_module" and n.target != "_guards_fn"
        }

    ptq = prepare_pt2e(export(nn.Linear(4, 4), torch.randn(1, 4)), CoreQuantizer())
    assert flags(ptq) == {"weight": True, "bias": True, "input_1": False, "linear": False}
    qat = prepare_qat_pt2e(export(nn.Linear(4, 4), torch.randn(1, 4)), CoreQuantizer())
    assert not any(flags(qat).values())
