"""Behaviour 4 of issue 10: quantization reaches inside ``scan``'s combine_fn, ``while_loop``'s
body_fn (as torchao 0.18) and both ``cond`` branches (torchao does not): prepare observes the
sub-graphs, convert writes q/dq into them, and the converted program runs."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch._higher_order_ops.scan import scan
from torch._higher_order_ops.while_loop import while_loop

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.errors import CalibrationError
from pt2q.quantizers import XNNPACKQuantizer, get_symmetric_quantization_config

qd = torch.ops.quantized_decomposed


class Scan(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, init: torch.Tensor, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        def combine(carry: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            y = torch.tanh(self.fc(carry + x))
            return y, y.clone()

        return scan(combine, init, xs)


class WhileLoop(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def cond_fn(i: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
            return i < 3

        def body_fn(i: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return i + 1, torch.tanh(self.fc(h))

        return while_loop(cond_fn, body_fn, (torch.tensor(0), x))[1]


class Cond(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pos = nn.Linear(8, 8)
        self.neg = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cond(x.sum() > 0, lambda x: self.pos(x), lambda x: self.neg(x), (x,))


def _subgraphs(gm: torch.fx.GraphModule) -> dict[str, torch.fx.GraphModule]:
    return {n: m for n, m in gm.named_children() if isinstance(m, torch.fx.GraphModule)}


def _count(gm: torch.fx.GraphModule, op: object) -> int:
    return sum(n.target == op for n in gm.graph.nodes)


CASES = {
    # model, example args, calibration batches, quantized sub-graphs
    "scan": (Scan, (torch.randn(2, 8), torch.randn(5, 2, 8)), None, ["scan_combine_graph_0"]),
    "while_loop": (WhileLoop, (torch.randn(2, 8),), None, ["while_loop_body_graph_0"]),
    "cond": (
        Cond,
        (torch.ones(2, 8),),
        [(torch.rand(2, 8),), (-torch.rand(2, 8),)],  # both branches taken
        ["true_graph_0", "false_graph_0"],
    ),
}


def _quantize(case: str) -> tuple[nn.Module, torch.fx.GraphModule, tuple[torch.Tensor, ...]]:
    model_cls, args, calibration, _ = CASES[case]
    torch.manual_seed(0)
    model = model_cls().eval()
    gm = torch.export.export(model, args).module()
    prepared = prepare_pt2e(gm, XNNPACKQuantizer().set_global(get_symmetric_quantization_config()))
    with torch.no_grad():
        for batch in calibration or [args]:
            prepared(*batch)
    return model, convert_pt2e(prepared), (calibration or [args])[0]


@pytest.mark.parametrize("case", list(CASES))
def test_subgraphs_are_quantized_and_run(case: str) -> None:
    model, converted, args = _quantize(case)
    subgraphs = _subgraphs(converted)
    for name in CASES[case][3]:
        sub = subgraphs[name]
        # per-tensor input activation + per-tensor weight (XNNPACK symmetric), as q/dq pairs
        assert _count(sub, qd.quantize_per_tensor.default) >= 2, (name, sub.graph)
        assert _count(sub, qd.dequantize_per_tensor.default) >= 2, (name, sub.graph)
        assert not any(n.op == "call_module" for n in sub.graph.nodes)  # no observer left
    if case == "while_loop":  # the loop condition is never quantized
        cond_graph = subgraphs["while_loop_cond_graph_0"]
        assert _count(cond_graph, qd.quantize_per_tensor.default) == 0
    with torch.no_grad():
        expected = torch.utils._pytree.tree_leaves(model(*args))
        got = torch.utils._pytree.tree_leaves(converted(*args))
    for e, g in zip(expected, got, strict=True):
        assert (e - g).abs().max() < 0.05 * e.abs().max() + 0.02


def test_untaken_cond_branch_names_the_subgraph() -> None:
    torch.manual_seed(0)
    gm = torch.export.export(Cond().eval(), (torch.ones(2, 8),)).module()
    prepared = prepare_pt2e(gm, XNNPACKQuantizer().set_global(get_symmetric_quantization_config()))
    with torch.no_grad():
        prepared(torch.rand(2, 8))  # only the true branch runs
    with pytest.raises(CalibrationError, match="false_graph_0.*cond branch sees data only"):
        convert_pt2e(prepared)


def test_qat_leaves_scan_bodies_float_and_says_so() -> None:
    # under autograd torch runs scan / while_loop bodies as traced copies: fake-quantizers in
    # them would never update, so QAT leaves them float, with a warning naming the body
    from pt2q import prepare_qat_pt2e

    torch.manual_seed(0)
    args = CASES["scan"][1]
    gm = torch.export.export(Scan(), args).module()
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_qat=True))
    with pytest.warns(UserWarning, match="'scan_combine_graph_0', the body of .*stays float"):
        prepared = prepare_qat_pt2e(gm, quantizer)
    body = _subgraphs(prepared)["scan_combine_graph_0"]
    assert not any(n.op == "call_module" for n in body.graph.nodes)
