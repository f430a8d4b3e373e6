"""QAT convert fold (pt2q.qat.fold_conv_bn_qat): the simulated-fusion form collapses into one
conv with folded constants, numerically equal to the trained float conv-bn in eval mode."""

from __future__ import annotations

import copy

import pytest
import torch
from conv_bn_models import CASES, make_case
from expecttest import TestCase
from torch import nn

from pt2q.qat import fold_conv_bn_qat, fuse_conv_bn_qat

aten = torch.ops.aten

BN_TARGETS = {aten.batch_norm.default, aten._native_batch_norm_legit_no_training.default}
FORM_SUFFIXES = ("_var_eps", "_running_std", "_scale", "_scaled_weight", "_unscaled", "_biased")


def _insert_weight_module(gm: torch.fx.GraphModule) -> None:
    """Put a call_module between the scaled weight and the conv, where prepare puts the weight's
    fake-quant (an identity here, so the float numerics stay comparable)."""
    for node in list(gm.graph.nodes):
        if node.name.endswith("_scaled_weight"):
            gm.add_submodule(f"{node.name}_fq", nn.Identity())
            with gm.graph.inserting_after(node):
                fq = gm.graph.call_module(f"{node.name}_fq", (node,))
            for user in [u for u in node.users if u is not fq]:
                user.replace_input_with(node, fq)
    gm.recompile()


def _trained(
    name: str, with_weight_module: bool
) -> tuple[torch.fx.GraphModule, nn.Module, torch.Tensor]:
    model, x = make_case(name)
    gm = torch.export.export(copy.deepcopy(model), (x,)).module()
    assert fuse_conv_bn_qat(gm)
    if with_weight_module:
        _insert_weight_module(gm)
    ref = copy.deepcopy(model)
    for m in (gm, ref):
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        for step in range(3):
            opt.zero_grad()
            m(x + 0.1 * step).square().mean().backward()
            opt.step()
    return gm, ref.eval(), x  # type: ignore[return-value]


@pytest.mark.parametrize("with_weight_module", [False, True], ids=["bare", "weight_fq_module"])
@pytest.mark.parametrize("name", list(CASES))
def test_fold_matches_trained_float_eval(name: str, with_weight_module: bool) -> None:
    gm, ref, x = _trained(name, with_weight_module)
    trained = {k: v.detach().clone() for k, v in gm.state_dict().items()}
    originals = dict(gm.state_dict())
    assert fold_conv_bn_qat(gm) is True
    assert not any(n.target in BN_TARGETS for n in gm.graph.nodes)
    assert not any(n.name.endswith(FORM_SUFFIXES) for n in gm.graph.nodes)
    assert not any(n.target is aten.add_.Tensor for n in gm.graph.nodes)
    # Float folding only re-associates: default float32 closeness of torch.testing.
    torch.testing.assert_close(gm(x), ref(x))
    for key, value in originals.items():  # the trained tensors were not written to
        assert torch.equal(value, trained[key]), key
    assert fold_conv_bn_qat(gm) is False


def test_plain_conv_bn_is_left_alone() -> None:
    model, x = make_case("conv2d")
    gm = torch.export.export(model.eval(), (x,)).module()
    assert fold_conv_bn_qat(gm) is False
    assert sum(n.target in BN_TARGETS for n in gm.graph.nodes) == 1


class TestFoldedGraph(TestCase):
    def test_golden_conv2d_folded_graph(self) -> None:
        gm, _, _ = _trained("conv2d_same_no_bias", with_weight_module=True)
        fold_conv_bn_qat(gm)
        lines = [
            f"{n.op} {n.name} = {n.target}{tuple(getattr(a, 'name', a) for a in n.args)}"
            for n in gm.graph.nodes
            if n.op in ("get_attr", "call_function", "call_module")
        ]
        self.assertExpectedInline(
            "\n".join(lines),
            """\
call_module _guards_fn = _guards_fn('x',)
get_attr op_weight_bn_folded = op_weight_bn_folded()
call_module conv2d_scaled_weight_fq = conv2d_scaled_weight_fq('op_weight_bn_folded',)
get_attr op_weight_bias_bn_folded = op_weight_bias_bn_folded()
call_function conv2d = aten.conv2d.padding('x', 'conv2d_scaled_weight_fq', 'op_weight_bias_bn_folded', [1, 1], 'same')
call_function relu = aten.relu.default('conv2d',)""",
        )
