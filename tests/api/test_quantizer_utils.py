"""pt2q.quantizer helpers (torchao's quantizer.utils names) used by a quantizer: annotations,
spec getters with torchao's checks, module-name filter, DuplicateDQPass, PortNodeMetaForQDQ."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.fx import GraphModule, Node

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.observer import MinMaxObserver, PerChannelMinMaxObserver
from pt2q.quantizer import (
    Q_ANNOTATION_KEY,
    DuplicateDQPass,
    OperatorConfig,
    PortNodeMetaForQDQ,
    QuantizationAnnotation,
    QuantizationConfig,
    QuantizationSpec,
    Quantizer,
    annotate_input_qspec_map,
    annotate_output_qspec,
    get_bias_qspec,
    get_input_act_qspec,
    get_module_name_filter,
    get_output_act_qspec,
    get_weight_qspec,
    is_valid_annotation,
)

aten = torch.ops.aten
qd = torch.ops.quantized_decomposed
ACT = QuantizationSpec(torch.uint8, MinMaxObserver, 0, 255, torch.per_tensor_affine)
WEIGHT = QuantizationSpec(
    torch.int8, PerChannelMinMaxObserver, -127, 127, torch.per_channel_symmetric, ch_axis=0
)
CONFIG = QuantizationConfig(ACT, ACT, WEIGHT, None)


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.sub = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sub(self.a(x))


class LinearQuantizer(Quantizer):
    """Input, weight and output of every linear outside ``skip``, with the helpers only."""

    def __init__(self, skip: str | None = None) -> None:
        self.skip = get_module_name_filter(skip) if skip else (lambda n: False)

    def annotate(self, model: GraphModule) -> GraphModule:
        for node in model.graph.nodes:
            if node.target != aten.linear.default or self.skip(node):
                continue
            annotate_input_qspec_map(node, node.args[0], get_input_act_qspec(CONFIG))
            annotate_input_qspec_map(node, node.args[1], get_weight_qspec(CONFIG))
            annotate_output_qspec(node, get_output_act_qspec(CONFIG))
        return model

    def validate(self, model: GraphModule) -> None:
        pass


def _export() -> tuple[nn.Module, GraphModule, torch.Tensor]:
    torch.manual_seed(0)
    model = Block().eval()
    x = torch.randn(4, 8)
    return model, torch.export.export(model, (x,)).module(), x


def _count(gm: GraphModule, op: object) -> int:
    return sum(n.target == op for n in gm.graph.nodes)


@pytest.mark.parametrize(
    ("skip", "quantized_linears", "q_count"),
    [
        # x, a out (= sub.0 in), sub.0 out, relu out (float relu: sub.2 in), sub.2 out
        pytest.param(None, 3, 5, id="all"),
        pytest.param("sub", 1, 2, id="sub_float"),  # x, a out
        pytest.param("sub.2", 2, 3, id="last_float"),
    ],
)
def test_helpers_annotate_and_filter(
    skip: str | None, quantized_linears: int, q_count: int
) -> None:
    model, gm, x = _export()
    converted = convert_pt2e(_calibrated(gm, LinearQuantizer(skip), x))
    assert _count(converted, qd.quantize_per_tensor.default) == q_count
    assert _count(converted, qd.dequantize_per_channel.default) == quantized_linears
    assert torch.allclose(converted(x), model(x), atol=0.05)


def _calibrated(gm: GraphModule, quantizer: Quantizer, x: torch.Tensor) -> GraphModule:
    prepared = prepare_pt2e(gm, quantizer)
    prepared(x)
    return prepared


def test_annotate_helpers_merge_into_one_annotation() -> None:
    _, gm, _ = _export()
    linear = next(n for n in gm.graph.nodes if n.target == aten.linear.default)
    annotate_input_qspec_map(linear, linear.args[0], ACT)
    annotate_output_qspec(linear, ACT)
    annotate_input_qspec_map(linear, linear.args[1], WEIGHT)
    ann = linear.meta[Q_ANNOTATION_KEY]
    assert ann.input_qspec_map == {linear.args[0]: ACT, linear.args[1]: WEIGHT}
    assert ann.output_qspec is ACT
    assert is_valid_annotation(ann)
    assert not is_valid_annotation(QuantizationAnnotation())
    assert not is_valid_annotation(None)


def test_spec_getters_check_like_torchao() -> None:
    assert get_input_act_qspec(None) is None and get_weight_qspec(None) is None
    assert get_bias_qspec(CONFIG) is None
    per_channel_act = QuantizationConfig(WEIGHT, None, None, None)
    with pytest.raises(ValueError, match="per tensor"):
        get_input_act_qspec(per_channel_act)
    affine_weight = QuantizationConfig(None, None, ACT, None)
    with pytest.raises(ValueError, match="Unsupported quantization_spec"):
        get_weight_qspec(affine_weight)
    int_bias = QuantizationConfig(None, None, None, ACT)
    with pytest.raises(ValueError, match="float bias"):
        get_bias_qspec(int_bias)
    float_bias = QuantizationSpec(torch.float, MinMaxObserver)
    assert get_bias_qspec(QuantizationConfig(None, None, None, float_bias)) is float_bias
    config = OperatorConfig(CONFIG, [[nn.Linear, nn.ReLU]])
    assert config.config is CONFIG and config.operators == [[nn.Linear, nn.ReLU]]


def test_module_name_filter_matches_exact_module_paths() -> None:
    _, gm, _ = _export()
    linears = [n for n in gm.graph.nodes if n.target == aten.linear.default]
    assert [get_module_name_filter("sub")(n) for n in linears] == [False, True, True]
    assert [get_module_name_filter("sub.2")(n) for n in linears] == [False, False, True]
    assert [get_module_name_filter("su")(n) for n in linears] == [False, False, False]


def _shared_dq_graph() -> GraphModule:
    """x -> q -> dq -> (relu, sigmoid): one dequantize with two users, each annotated (as
    before convert) on its input edge from ``x``."""

    class M(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            q = qd.quantize_per_tensor.default(x, 0.1, 3, 0, 255, torch.uint8)
            dq = qd.dequantize_per_tensor.default(q, 0.1, 3, 0, 255, torch.uint8)
            return torch.relu(dq), torch.sigmoid(dq)

    gm = torch.export.export(M(), (torch.randn(4),)).module()
    for node in gm.graph.nodes:
        if node.target in (aten.relu.default, aten.sigmoid.default):
            x = node.args[0].args[0].args[0]  # type: ignore[union-attr]
            annotate_input_qspec_map(node, x, ACT)
            node.meta["stack_trace"] = f"trace of {node.name}"
    return gm


def test_duplicate_dq_pass_gives_each_annotated_user_its_own_dq() -> None:
    gm = _shared_dq_graph()
    x = torch.randn(4)
    before = gm(x)
    result = DuplicateDQPass()(gm)
    assert result.modified
    dqs = [n for n in gm.graph.nodes if n.target == qd.dequantize_per_tensor.default]
    assert len(dqs) == 2 and all(len(d.users) == 1 for d in dqs)
    assert all(torch.equal(a, b) for a, b in zip(before, gm(x), strict=True))
    assert not DuplicateDQPass()(gm).modified  # nothing shared any more


def test_port_node_meta_copies_consumer_stack_trace_to_its_dq() -> None:
    gm = _shared_dq_graph()
    DuplicateDQPass()(gm)
    PortNodeMetaForQDQ()(gm)
    for node in gm.graph.nodes:
        if node.target in (aten.relu.default, aten.sigmoid.default):
            dq = node.args[0]
            assert isinstance(dq, Node)
            assert dq.meta["stack_trace"] == f"trace of {node.name}"
