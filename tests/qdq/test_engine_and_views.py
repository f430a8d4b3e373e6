"""pt2q.qdq: literal capture, rejections with reasons, chained rewrites, typed views, meta keys."""

from __future__ import annotations

import pytest
import torch
from torch.fx import GraphModule

from pt2q.qdq import (
    NoMatch,
    Pattern,
    Rewrite,
    act_q,
    constant_value,
    find_matches,
    get_handle,
    is_choose_qparams,
    is_dequantize,
    is_quantize,
    out_q,
    quantized_op,
    rewrite,
    searches,
    set_handle,
    token_q,
    weight_q,
)
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizers import XNNPACKQuantizer, get_symmetric_quantization_config

aten = torch.ops.aten
LINEAR = searches.weighted("linear", per_channel=True, relu=False)
LINEAR_RELU = searches.weighted("linear", per_channel=True, relu=True)


def _converted(relu: bool = True) -> tuple[GraphModule, torch.Tensor]:
    """float x -> q -> dq -> fc1 [-> relu] -> q -> dq -> fc2 -> q -> dq (per-channel weights)."""
    torch.manual_seed(0)
    act = torch.nn.ReLU() if relu else torch.nn.Identity()
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), act, torch.nn.Linear(5, 3))
    x = torch.randn(4, 6)
    gm = torch.export.export(model.eval(), (x,)).module()
    cfg = get_symmetric_quantization_config(is_per_channel=True)
    prepared = prepare_pt2e(gm, XNNPACKQuantizer().set_global(cfg))
    prepared(x)
    return convert_pt2e(prepared), x


def test_search_parameters_bind_nodes_and_literals() -> None:
    gm, _ = _converted()
    (match,) = find_matches(gm, Pattern("linear", LINEAR, lambda r: None))
    assert match.anchor.target == aten.linear.default and match.anchor.name == "linear_1"
    assert isinstance(match["xs"], float) and match["xdt"] == torch.int8
    assert match["axis"] == 0 and (match["wlo"], match["whi"]) == (-127, 127)
    assert match["w"].op == "get_attr" and match["b"].op == "get_attr"
    assert is_quantize(match.root) and match.post_ops == ()
    (with_relu,) = find_matches(gm, Pattern("linear_relu", LINEAR_RELU, lambda r: None))
    assert [n.target for n in with_relu.post_ops] == [aten.relu.default]


def test_rejected_match_keeps_the_graph_and_says_why() -> None:
    gm, _ = _converted()
    before = str(gm.graph)

    def refuse(r: Rewrite) -> object:
        raise NoMatch(f"{r.match.anchor.name}: this backend takes no linear")

    result = rewrite(gm, Pattern("linear", LINEAR, refuse))
    assert len(result) == 0 and str(gm.graph) == before
    assert [reason for _, reason in result.rejected] == ["linear_1: this backend takes no linear"]


def test_chained_matches_rewrite_cleanly_and_keep_values() -> None:
    """Both linears match one pattern; the second's input is the first's root (resolved)."""
    gm, x = _converted(relu=False)
    want = gm(x)

    def float_linear(r: Rewrite) -> object:  # dq -> linear -> q with the same q/dq math
        xf = torch.ops.quantized_decomposed.dequantize_per_tensor.default(
            r["x"], r["xs"], r["xz"], r["xlo"], r["xhi"], r["xdt"]
        )
        wf = torch.ops.quantized_decomposed.dequantize_per_channel.default(
            r["w"], r["ws"], r["wz"], r["axis"], r["wlo"], r["whi"], r["wdt"]
        )
        y = aten.linear.default(xf, wf, r["b"])
        if r.match.post_ops:
            y = aten.relu.default(y)
        r.kernel = "float"
        return torch.ops.quantized_decomposed.quantize_per_tensor.default(
            y, r["os"], r["oz"], r["olo"], r["ohi"], r["odt"]
        )

    result = rewrite(gm, Pattern("l", LINEAR, float_linear))
    gm.graph.lint()
    gm.recompile()
    assert len(result) == 2 and [k for _, _, k in result.rewritten] == ["float", "float"]
    torch.testing.assert_close(gm(x), want, rtol=0, atol=0)


def test_views_and_meta() -> None:
    gm, _ = _converted()
    linear = next(n for n in gm.graph.nodes if n.target == aten.linear.default)
    view = quantized_op(linear, weight_arg=1, post_op_targets={aten.relu.default})
    (act,) = view.inputs
    assert act is not None and act.is_static and act.dtype == torch.int8
    assert view.weight is not None and view.weight.axis == 0
    assert view.bias is not None and view.output is not None and len(view.post_ops) == 1
    assert view.float_parts() == []
    w, scale, zp = view.weight.tensors(gm)
    assert w.dtype == torch.int8 and scale.shape == (5,) and bool((zp == 0).all())
    assert act_q(linear) is None and is_dequantize(act.dq)
    out = out_q(view.output.q)
    assert out == view.output and out.is_static and out.value is view.post_ops[0]
    assert out_q(linear) is None and out_q(act.dq) is None
    set_handle(linear, 7)
    assert get_handle(linear) == 7
    with pytest.raises(NoMatch, match="expected a constant"):
        constant_value(gm, linear)  # a call, not a get_attr


def test_grouped_weight_view() -> None:
    """int4 weight-only (llm_config): dequantize_per_channel_group read as a WeightQ."""
    from pt2q.quantizers import llm_config

    torch.manual_seed(1)
    x = torch.randn(2, 64)
    gm = torch.export.export(torch.nn.Linear(64, 8).eval(), (x,)).module()
    prepared = prepare_pt2e(gm, XNNPACKQuantizer().set_global(llm_config("int4wo", 32)))
    prepared(x)
    converted = convert_pt2e(prepared)
    linear = next(n for n in converted.graph.nodes if n.target == aten.linear.default)
    view = quantized_op(linear, weight_arg=1)
    assert view.weight is not None and view.weight.group_size == 32
    w, scale, zp = view.weight.tensors(converted)
    assert w.shape == (8, 64) and scale.shape == (8, 2) and zp.shape == (8, 2)
    assert view.inputs == (None,) and view.float_parts()  # weight-only: the input stays float


def test_per_token_activation_view() -> None:
    """8da4w (llm_config): x -> choose_qparams_per_token_asymmetric -> quantize_per_token ->
    dequantize_per_token -> linear, read as one TokenQ; a broken chain says why."""
    from pt2q.quantizers import llm_config

    torch.manual_seed(2)
    x = torch.randn(3, 64)
    gm = torch.export.export(torch.nn.Linear(64, 8).eval(), (x,)).module()
    prepared = prepare_pt2e(gm, XNNPACKQuantizer().set_global(llm_config("8da4w", 32)))
    prepared(x)
    converted = convert_pt2e(prepared)
    linear = next(n for n in converted.graph.nodes if n.target == aten.linear.default)
    tokens = token_q(linear.args[0])
    assert tokens is not None and tokens.dq is linear.args[0] and tokens.source.op == "placeholder"
    assert is_quantize(tokens.q) and is_choose_qparams(tokens.choose)
    assert tokens.scale.args == (tokens.choose, 0) and tokens.zero_point.args == (tokens.choose, 1)
    assert (tokens.qmin, tokens.qmax, tokens.dtype) == (-128, 127, torch.int8)
    weight = weight_q(linear.args[1])
    assert weight is not None and weight.group_size == 32 and weight.out_dtype == torch.float32
    assert token_q(tokens.source) is None and token_q(linear.args[1]) is None
    tokens.dq.replace_input_with(tokens.q, tokens.source)  # dq now reads the float input
    with pytest.raises(NoMatch, match="does not dequantize a quantize_per_token"):
        token_q(tokens.dq)
