"""pt2q.graph_utils (torchao's graph_utils names): sequential partitions with equivalent types,
BFS over control-flow sub-graphs, producer collection."""

from __future__ import annotations

import operator

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from pt2q.graph_utils import (
    bfs_trace_with_node_process,
    collect_producer_nodes,
    find_sequential_partitions,
    get_equivalent_types,
    update_equivalent_types_dict,
)

aten = torch.ops.aten


class ConvReluTwice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv1(x))
        return F.relu(self.conv2(x))  # functional relu: an equivalent type


def _gm() -> torch.fx.GraphModule:
    return torch.export.export(ConvReluTwice(), (torch.randn(1, 3, 8, 8),)).module()


def test_sequential_partitions_match_module_and_functional_forms() -> None:
    gm = _gm()
    pairs = find_sequential_partitions(gm, [nn.Conv2d, nn.ReLU])
    names = sorted((a.output_nodes[0].name, b.output_nodes[0].name) for a, b in pairs)
    assert names == [("conv2d", "relu"), ("conv2d_1", "relu_1")]
    assert len(find_sequential_partitions(gm, [nn.ReLU, nn.Conv2d])) == 1  # relu -> conv2


def test_repeated_equivalent_types_are_rejected() -> None:
    with pytest.raises(ValueError, match="must be unique"):
        find_sequential_partitions(_gm(), [nn.ReLU, F.relu])


def test_update_equivalent_types_dict_replaces_the_table() -> None:
    default = get_equivalent_types()
    assert {torch.add, operator.add, operator.iadd, "add", "add_"} in default
    assert {nn.ReLU, F.relu, F.relu_, "relu", "relu_"} in default
    gm = _gm()
    try:
        update_equivalent_types_dict([{nn.Conv2d}])  # functional relu no longer a ReLU
        pairs = find_sequential_partitions(gm, [nn.Conv2d, nn.ReLU])
        assert [b.output_nodes[0].name for _, b in pairs] == ["relu"]
        with pytest.raises(ValueError, match="should not be None"):
            update_equivalent_types_dict(None)
    finally:
        update_equivalent_types_dict(default)
    assert get_equivalent_types() is default


class Branches(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cond(x.sum() > 0, lambda x: self.a(x).relu(), lambda x: self.b(x), (x,))


def test_bfs_visits_cond_branches_after_the_outer_graph() -> None:
    ep = torch.export.export(Branches(), (torch.randn(2, 4),))
    seen: list[str] = []
    bfs_trace_with_node_process(ep, lambda n: seen.append(n.name))
    assert seen.index("cond") < seen.index("linear")
    assert [n for n in seen if n.startswith(("linear", "relu"))] == ["linear", "relu", "linear"]
    assert "x" not in seen and "output" not in seen  # placeholders and outputs skipped
    with pytest.raises(TypeError, match="GraphModule or ExportedProgram"):
        bfs_trace_with_node_process(Branches(), print)  # type: ignore[arg-type]


def test_collect_producer_nodes_stops_at_graph_inputs() -> None:
    gm = _gm()
    nodes = {n.name: n for n in gm.graph.nodes}
    conv_weight = nodes["conv1_weight"]
    assert collect_producer_nodes(nodes["relu"]) is None  # depends on the input x
    assert collect_producer_nodes(conv_weight) == [conv_weight]
