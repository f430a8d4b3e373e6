"""Equalization and SmoothQuant are float -> equivalent-float rewrites (exact within fp32)."""

from __future__ import annotations

import torch
from algorithm_models import ConvChain, OutlierBlock, conv_batches, exported, token_batches

from pt2q.algorithms import equalize, smooth
from pt2q.algorithms.equalize import EqualizedPair
from pt2q.algorithms.params import get_param, weight_bias

FP32_REL = 1e-5  # relative max error allowed for an equivalent-float rewrite (fp32 rounding)


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_equalize_pairs_ranges_and_same_function() -> None:
    torch.manual_seed(0)
    model = ConvChain().eval()
    batches = conv_batches()
    gm = exported(model, batches[0])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pairs = equalize(gm, batches[:3])
    assert pairs == [
        EqualizedPair("conv2d", "relu6", "conv2d_1"),  # relu6 -> per-channel bound
        EqualizedPair("conv2d_1", "relu", "conv2d_2"),  # depthwise -> pointwise
        EqualizedPair("linear", "relu_2", "linear_1"),
    ]
    ops = [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]
    assert "aten.relu6.default" not in ops and "aten.minimum.default" in ops
    with torch.no_grad():  # exact where the absorbed bias stays below the activations: fit data
        for b in batches[:3]:
            assert _rel_err(gm(b), model(b)) < FP32_REL
    # first pair: A's per-output-channel range equals B's per-input-channel range
    nodes = {n.name: n for n in gm.graph.nodes}
    wa = get_param(gm, weight_bias(nodes["conv2d"])[0]).detach()
    wb = get_param(gm, weight_bias(nodes["conv2d_1"])[0]).detach()
    r1, r2 = wa.abs().flatten(1).amax(1), wb.abs().flatten(1).amax(1)  # depthwise: in == out
    assert torch.allclose(r1, r2, rtol=0.05)  # 4 passes over the chain: nearly settled
    assert float(r1.max() / r1.min()) < float(
        model.conv.weight.abs().flatten(1).amax(1).max()
        / model.conv.weight.abs().flatten(1).amax(1).min()
    )
    # bias absorption moved the always-positive part of pw's output into fc1's bias: pw -> fc1
    # is not a pair (flatten in between), dw -> pw is (padding 0 on pw)
    assert not torch.equal(get_param(gm, weight_bias(nodes["conv2d_1"])[1]), model.dw.bias)
    for k, v in model.state_dict().items():  # the user's model is untouched
        assert torch.equal(v, before[k]), k


def test_equalize_without_bias_absorption_is_exact_everywhere() -> None:
    torch.manual_seed(0)
    model = ConvChain().eval()
    gm = exported(model, conv_batches()[0])
    equalize(gm, absorb_bias=False)
    x = torch.randn(4, 3, 8, 8) * 3
    with torch.no_grad():
        assert _rel_err(gm(x), model(x)) < FP32_REL


def test_smooth_folds_into_layer_norm_or_a_copy_of_it() -> None:
    torch.manual_seed(0)
    model = OutlierBlock().eval()
    batches = token_batches()
    gm = exported(model, batches[0])
    groups = smooth(gm, batches[:3])
    by_act = {g.activation: g for g in groups}
    assert by_act["layer_norm"].linears == ("linear", "linear_1")
    assert by_act["layer_norm"].placed == "layer_norm"  # ln read only by q and k
    # ln2 is also read by the residual add: ffn reads a copy with divided parameters
    assert by_act["layer_norm_1"].placed == "layer_norm copy"
    nodes = {n.name: n for n in gm.graph.nodes}
    ffn_input = nodes["linear_2"].args[0]
    assert ffn_input.target == torch.ops.aten.layer_norm.default
    assert ffn_input is not nodes["layer_norm_1"]
    assert nodes["layer_norm_1"] in nodes["add_1"].args  # the residual reads the original
    assert not any(n.target == torch.ops.aten.mul.Tensor for n in gm.graph.nodes)
    assert 0.3 <= by_act["layer_norm"].alpha <= 0.8
    with torch.no_grad():
        assert _rel_err(gm(batches[3]), model(batches[3])) < FP32_REL
    assert torch.equal(model.ln.weight[:2], torch.full((2,), 50.0))  # user's model untouched


class _GeluLinear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(32, 32), torch.nn.Linear(32, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.nn.functional.gelu(self.fc1(x)))


def test_smooth_inserts_a_mul_only_when_asked() -> None:
    torch.manual_seed(0)
    model = _GeluLinear().eval()
    with torch.no_grad():
        model.fc1.bias[:2] = 40.0  # two post-GELU outlier channels
    batches = token_batches()
    gm = exported(model, batches[0])
    assert smooth(gm, batches[:3]) == []  # no layer_norm: nothing by default
    groups = smooth(gm, batches[:3], insert_mul=True)
    placed = {g.activation: g.placed for g in groups}
    assert placed["gelu"] == "mul" and set(placed.values()) == {"mul"}
    with torch.no_grad():
        assert _rel_err(gm(batches[3]), model(batches[3])) < FP32_REL
