"""pt2q.utils module/node helpers and pt2q.export_utils' model_is_exported / WrapperModule,
against torchao 0.18 where it gives a value (subprocess)."""

from __future__ import annotations

import torch
from torch import nn
from torchao_peer import register, result

from pt2q.export_utils import WrapperModule, model_is_exported
from pt2q.utils import (
    _filter_sym_size_users,
    _get_aten_graph_module_for_pattern,
    _is_conv_node,
    _is_conv_transpose_node,
    _is_sym_size_node,
    create_getattr_from_value,
    get_fqn_to_example_inputs,
    get_new_attr_name_with_prefix,
    getattr_from_fqn,
    has_no_children_ignoring_parametrizations,
)

# The model is defined once, as source, so torchao's subprocess builds the same one.
MODEL_SOURCE = """
class Sub(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)
    def forward(self, x, scale=2.0, shift=0.5):
        return self.linear(x) * scale + shift
class Top(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.sub = Sub()
        self.head = torch.nn.Linear(4, 2)
    def forward(self, x):
        return self.head(self.sub(x, shift=1.5))
"""
exec(MODEL_SOURCE)  # defines Sub, Top

register(
    "fqn_to_example_inputs",
    MODEL_SOURCE
    + """
from torchao.quantization.pt2e.utils import get_fqn_to_example_inputs
torch.manual_seed(0)
found = get_fqn_to_example_inputs(Top(), (torch.ones(3, 4),))
result = {k: [tensor_list(v) if isinstance(v, torch.Tensor) else v for v in vs]
          for k, vs in found.items()}
""",
)


def _plain(values: tuple) -> list:
    return [v.double().tolist() if isinstance(v, torch.Tensor) else v for v in values]


def test_fqn_to_example_inputs_matches_torchao() -> None:
    torch.manual_seed(0)
    found = get_fqn_to_example_inputs(Top(), (torch.ones(3, 4),))  # noqa: F821 - from exec
    ours = {k: _plain(v) for k, v in found.items()}
    theirs = result("fqn_to_example_inputs")
    assert ours.keys() == theirs.keys()  # "", sub, sub.linear, head
    for key in ("", "sub.linear", "head"):  # forwards without defaulted parameters
        assert ours[key] == theirs[key], key
    # forward(x, scale=2.0, shift=0.5) called as sub(x, shift=1.5): torchao 0.18 returns (x,)
    # only, contradicting its docstring; pt2q fills defaults and keywords in order, as documented
    assert theirs["sub"] == ours["sub"][:1]
    assert ours["sub"][1:] == [2.0, 1.5]


def test_attribute_helpers() -> None:
    top = Top()  # noqa: F821 - from exec
    assert getattr_from_fqn(top, "sub.linear.weight") is top.sub.linear.weight
    top._q0 = 1
    assert get_new_attr_name_with_prefix("_q")(top) == "_q1"
    assert get_new_attr_name_with_prefix("a.b")(top) == "a_b0"
    gm = torch.export.export(top, (torch.ones(1, 4),)).module()
    node = create_getattr_from_value(gm, gm.graph, "_scale_", torch.tensor([0.5]))
    assert node.op == "get_attr" and node.target == "_scale_0"
    assert torch.equal(gm._scale_0, torch.tensor([0.5]))
    assert create_getattr_from_value(gm, gm.graph, "_scale_", 3).target == "_scale_1"
    assert has_no_children_ignoring_parametrizations(nn.Linear(2, 2))
    assert not has_no_children_ignoring_parametrizations(top)
    parametrized = nn.Linear(2, 2)
    torch.nn.utils.parametrize.register_parametrization(parametrized, "weight", nn.Identity())
    assert has_no_children_ignoring_parametrizations(parametrized)


def test_model_is_exported_and_wrapper_module() -> None:
    top = Top()  # noqa: F821 - from exec
    exported = torch.export.export(top, (torch.ones(1, 4),)).module()
    assert model_is_exported(exported)
    assert not model_is_exported(top)
    assert not model_is_exported(torch.fx.symbolic_trace(nn.Linear(2, 2)))
    wrapped = WrapperModule(lambda x, y=1.0: x * 2 + y)
    assert torch.equal(wrapped(torch.ones(2), y=3.0), torch.full((2,), 5.0))
    assert model_is_exported(torch.export.export(wrapped, (torch.ones(2),)).module())


class ConvFamily(nn.Module):
    def forward(self, x: torch.Tensor, w: torch.Tensor, wt: torch.Tensor) -> torch.Tensor:
        y = nn.functional.conv2d(x, w, padding="same")
        y = nn.functional.conv_transpose2d(y, wt)
        return y.view(y.shape[0], -1)


def test_node_predicates_and_pattern_tracing() -> None:
    w, wt = torch.randn(3, 2, 3, 3), torch.randn(3, 2, 2, 2)
    dim = torch.export.Dim("batch", min=2)
    gm = torch.export.export(ConvFamily(), (torch.randn(2, 2, 5, 5), w, wt),
                             dynamic_shapes=({0: dim}, None, None)).module()  # fmt: skip
    convs = [n.name for n in gm.graph.nodes if _is_conv_node(n)]
    transposed = [n.name for n in gm.graph.nodes if _is_conv_transpose_node(n)]
    assert (convs, transposed) == (["conv2d"], ["conv_transpose2d"])
    sym = [n for n in gm.graph.nodes if _is_sym_size_node(n)]
    assert sym, gm.graph  # the dynamic batch size is read with sym_size
    producer = sym[0].args[0]
    assert sym[0] not in _filter_sym_size_users(producer)
    pattern = _get_aten_graph_module_for_pattern(
        lambda a, b: nn.functional.relu(a + b), (torch.randn(2), torch.randn(2))
    )
    targets = [n.target for n in pattern.graph.nodes if n.op == "call_function"]
    assert targets == [torch.ops.aten.add.Tensor, torch.ops.aten.relu.default]
    assert not any(n.op == "call_module" for n in pattern.graph.nodes)  # no guard call
    a = torch.randn(2)
    assert torch.equal(pattern(a, -a * 0.5), torch.relu(a * 0.5))
