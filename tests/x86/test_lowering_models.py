"""Lower pt2q-converted models to oneDNN int8 kernels: the returned GraphModule, its report,
numerics of both tiers (eager graph, compiled) against the reference program."""

from __future__ import annotations

import copy

import pytest
import torch
from torch._inductor import config as inductor_config
from x86_models import MLP3d, SmallCNN, last_quantize_scale, quantize, sqnr_db

from pt2q.lowering import lowering_report
from pt2q.lowering.x86 import X86LoweredModule, lower_pt2e_quantized_to_x86, lowering_coverage
from pt2q.qdq import LoweringStatus
from pt2q.tolerances import LOWERED_VS_REFERENCE_STEPS, assert_within_steps

QLINEAR = "onednn.qlinear_pointwise.default"
QCONV = "onednn.qconv_pointwise.default"
QCONV_ADD = "onednn.qconv2d_pointwise.binary"


def _check(actual: torch.Tensor, ref: torch.fx.GraphModule, x: torch.Tensor) -> float:
    with torch.no_grad():
        expected = ref(x)
    # LOWERED_VS_REFERENCE_STEPS of the final quantized value (a fused requantize may round a
    # tie the other way).
    assert_within_steps(
        actual, expected, last_quantize_scale(ref), LOWERED_VS_REFERENCE_STEPS, "lowered output"
    )
    return sqnr_db(actual, expected)


def _targets(gm: torch.fx.GraphModule) -> list[str]:
    return [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]


@pytest.fixture(scope="module")
def mlp() -> tuple[X86LoweredModule, torch.fx.GraphModule, str]:
    torch.manual_seed(0)
    x = torch.randn(4, 16, 64)  # (B, T, C): 3-D linears as in every transformer
    batch = torch.export.Dim("batch", min=1, max=64)
    ref = quantize(MLP3d(), (x,), dynamic_shapes=({0: batch},))
    before = str(ref.graph)
    low = lower_pt2e_quantized_to_x86(ref, (x,), payoff=False)  # tiny layers: see test_payoff
    return low, ref, before


def test_mlp_is_a_graph_module_holding_qlinear_kernels(
    mlp: tuple[X86LoweredModule, torch.fx.GraphModule, str],
) -> None:
    low, ref, before = mlp
    assert isinstance(low, torch.fx.GraphModule)
    assert str(ref.graph) == before  # the converted program is not touched
    # 3-D linears lowered (torchao 0.18's eager path leaves them fp32).
    assert _targets(low).count(QLINEAR) == 3
    assert "aten.addmm.default" not in _targets(low) and "aten.mm.default" not in _targets(low)
    report = lowering_report(low)
    assert report is lowering_coverage(low) is low.report
    assert [d.node for d in report.lowered] == ["linear", "linear_1", "linear_2"]
    assert report.kernel_counts() == {QLINEAR: 3}
    assert report.not_lowered == []
    fused = {d.node: d.kernel for d in report.with_status(LoweringStatus.FUSED)}
    # up -> relu -> q and proj -> relu fuse; proj's add stays float (see guards.py).
    assert fused == {
        "relu": "linear",
        "quantize_per_tensor_default_1": "linear",
        "relu_1": "linear_2",
    }
    assert report.facts["inductor_counters"]["qlinear_weight_prepack_matcher_count"] == 3


def test_mlp_eager_graph_matches_reference_with_dynamic_batch(
    mlp: tuple[X86LoweredModule, torch.fx.GraphModule, str],
) -> None:
    low, ref, _ = mlp
    low2 = lower_pt2e_quantized_to_x86(ref, (torch.randn(4, 16, 64),), compile=False, payoff=False)
    for batch in (4, 2, 9):
        torch.manual_seed(batch)
        x = torch.randn(batch, 16, 64)
        with torch.no_grad():
            assert _check(low2(x), ref, x) > 40.0
    assert not low2.compiled


@pytest.mark.slow
def test_mlp_compiled_tier_matches_and_keeps_global_config(
    mlp: tuple[X86LoweredModule, torch.fx.GraphModule, str],
) -> None:
    low, ref, _ = mlp
    freezing = inductor_config.freezing
    torch.manual_seed(1)
    x = torch.randn(4, 16, 64)
    first = low(x)  # the first call runs the graph eagerly: nothing compiled for one call
    assert not low.compiled
    second = low(x)  # then the compiled tier
    assert low.compiled
    assert inductor_config.freezing == freezing  # patched only around compiling calls
    _check(first, ref, x)
    _check(second, ref, x)
    for batch in (2, 9):  # dims exported as Dim stay dynamic in the compiled tier
        xb = torch.randn(batch, 16, 64)
        _check(low(xb), ref, xb)
    # every call so far was one the AOTInductor program was built for (batch in [1, 64])
    assert low.compiled_tiers == ("aotinductor",)
    assert low.tier_notes == []
    assert "aoti_torch_cpu__qlinear_pointwise_tensor(" in (low.aot_wrapper_source or "")
    # a transposed view: not what that program takes; torch.compile of the same lowering serves
    xt = torch.randn(4, 64, 16).transpose(1, 2)
    _check(low(xt), ref, xt)
    assert low.compiled_tiers == ("aotinductor", "torch.compile")
    xb = torch.randn(3, 16, 64)
    _check(low(xb), ref, xb)  # contiguous again: back on the AOTInductor program


def test_deepcopy_shares_the_prepacked_weights_and_compiled_tiers(
    mlp: tuple[X86LoweredModule, torch.fx.GraphModule, str],
) -> None:
    """``copy.deepcopy`` works (the prepacked oneDNN weights have no storage to copy: shared),
    the copy runs the compiled tiers already built, and its graph is its own."""
    low, ref, _ = mlp
    torch.manual_seed(4)
    x = torch.randn(4, 16, 64)
    low(x), low(x)
    twin = copy.deepcopy(low)
    assert isinstance(twin, X86LoweredModule) and twin is not low
    assert twin.compiled_tiers == low.compiled_tiers and "aotinductor" in twin.compiled_tiers
    assert torch.equal(twin(x), low(x))
    assert [d.node for d in twin.report.lowered] == [d.node for d in low.report.lowered]
    output = next(n for n in twin.graph.nodes if n.op == "output")
    (result,) = output.args[0]  # type: ignore[misc]
    with twin.graph.inserting_before(output):
        doubled = twin.graph.call_function(torch.ops.aten.mul.Tensor, (result, 2.0))
    output.args = ((doubled,),)
    twin.recompile()  # drops the copy's tiers only: it now runs exactly its graph
    assert not twin.compiled and low.compiled
    assert low.graph.owning_module is low and twin.graph.owning_module is twin
    assert torch.equal(twin(x), 2.0 * low.forward(x))
    _check(low(x), ref, x)


@pytest.mark.slow
def test_aotinductor_tier_takes_an_unbounded_dynamic_batch() -> None:
    """``Dim.DYNAMIC`` (no max): the AOTInductor program takes any batch its range allows."""
    torch.manual_seed(3)
    x = torch.randn(4, 16, 64)
    ref = quantize(MLP3d(), (x,), dynamic_shapes=({0: torch.export.Dim.DYNAMIC},))
    low = lower_pt2e_quantized_to_x86(ref, (x,), payoff=False)
    for batch in (4, 4, 7, 100):
        xb = torch.randn(batch, 16, 64)
        _check(low(xb), ref, xb)
    assert low.compiled_tiers == ("aotinductor",), low.tier_notes


@pytest.mark.slow
def test_compiled_tier_is_torch_compile_with_options_or_mixed_bf16() -> None:
    torch.manual_seed(2)
    x = torch.randn(2, 16, 64)
    ref = quantize(MLP3d(), (x,))
    for low in (
        lower_pt2e_quantized_to_x86(ref, (x,), payoff=False, options={"cpp_wrapper": False}),
        lower_pt2e_quantized_to_x86(ref, (x,), payoff=False, mixed_bf16=True),
    ):
        with torch.no_grad():
            low(x), low(x)
        assert low.compiled_tiers == ("torch.compile",)
        assert low.aot_wrapper_source is None


@pytest.fixture(scope="module")
def cnn() -> tuple[X86LoweredModule, torch.fx.GraphModule]:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    ref = quantize(SmallCNN(), (x,))
    return lower_pt2e_quantized_to_x86(ref, (x,), compile=False, payoff=False), ref


def test_cnn_convs_residual_add_and_linear_lower(
    cnn: tuple[X86LoweredModule, torch.fx.GraphModule],
) -> None:
    low, ref = cnn
    report = low.report
    assert {d.node: d.kernel for d in report.lowered} == {
        "conv2d": QCONV,
        "conv2d_1": QCONV_ADD,  # body conv + residual add (+ relu) in one kernel
        "conv2d_2": QCONV,
        "linear": QLINEAR,
    }
    targets = _targets(low)
    assert (targets.count(QCONV), targets.count(QCONV_ADD), targets.count(QLINEAR)) == (2, 1, 1)
    c = report.facts["inductor_counters"]
    assert c["qconv_weight_prepack_matcher_count"] == 3
    assert c["qconv2d_binary_matcher_count"] == 1
    torch.manual_seed(1)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert _check(low(x), ref, x) > 30.0


def test_errors_name_the_argument(cnn: tuple[X86LoweredModule, torch.fx.GraphModule]) -> None:
    _, ref = cnn
    with pytest.raises(ValueError, match="example_inputs is required"):
        lower_pt2e_quantized_to_x86(ref)
    with pytest.raises(TypeError, match="got Linear"):
        lower_pt2e_quantized_to_x86(torch.nn.Linear(2, 2), (torch.randn(1, 2),))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="takes 1 flat inputs, example_inputs has 2"):
        lower_pt2e_quantized_to_x86(ref, (torch.randn(2, 3, 8, 8), torch.randn(1)))
    with pytest.raises(TypeError, match="without a lowering report"):
        lowering_report(ref)


class Attention(torch.nn.Module):
    """q/k/v -> SDPA -> transpose -> reshape -> output projection, as in every transformer."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = torch.nn.ModuleList(torch.nn.Linear(32, 32) for _ in range(3))
        self.out = torch.nn.Linear(32, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, 32)
        b, t, _ = x.shape
        q, k, v = (p(x).view(b, t, 4, 8).transpose(1, 2) for p in self.qkv)
        h = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return self.out(h.transpose(1, 2).reshape(b, t, 32))


def test_attention_output_projection_lowers() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 8, 32)
    ref = quantize(Attention(), (x,))
    low = lower_pt2e_quantized_to_x86(ref, (x,), compile=False, payoff=False)
    report = low.report
    # The projection after attention reads a transposed tensor: it must not decompose to bmm.
    assert [d.node for d in report.lowered] == ["linear", "linear_1", "linear_2", "linear_3"]
    (attn,) = report.not_lowered
    assert attn.op == "aten.scaled_dot_product_attention.default"
    assert attn.reason.startswith("attention stays float")
    with torch.no_grad():
        _check(low(x), ref, x)
