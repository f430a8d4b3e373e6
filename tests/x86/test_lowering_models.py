"""Lower pt2q-converted models to oneDNN int8 kernels and compare with the reference program.

Compile-heavy (Inductor on 2 cores): one lowering per model, shared by its assertions.
"""

from __future__ import annotations

import pytest
import torch
from torch._inductor import config as inductor_config
from x86_models import MLP3d, SmallCNN, last_quantize_scale, quantize, sqnr_db

from pt2q.lowering.x86 import X86LoweredModule, lower_pt2e_quantized_to_x86, lowering_coverage
from pt2q.tolerances import LOWERED_VS_REFERENCE_STEPS, assert_within_steps


def _check_numerics(low: X86LoweredModule, ref: torch.fx.GraphModule, x: torch.Tensor) -> float:
    with torch.no_grad():
        actual, expected = low(x), ref(x)
    # Per the tolerance policy: at most LOWERED_VS_REFERENCE_STEPS steps of the final
    # quantized value (a rounding tie in a fused requantize may move it by one step).
    assert_within_steps(
        actual, expected, last_quantize_scale(ref), LOWERED_VS_REFERENCE_STEPS, "lowered output"
    )
    return sqnr_db(actual, expected)


@pytest.fixture(scope="module")
def mlp() -> tuple[X86LoweredModule, torch.fx.GraphModule]:
    torch.manual_seed(0)
    x = torch.randn(4, 16, 64)  # (B, T, C): 3-D linears as in every transformer
    batch = torch.export.Dim("batch", min=1, max=64)
    ref = quantize(MLP3d(), (x,), dynamic_shapes=({0: batch},))
    freezing_before = inductor_config.freezing
    low = lower_pt2e_quantized_to_x86(ref, (x,))
    assert inductor_config.freezing == freezing_before  # global config untouched
    assert inductor_config.post_grad_custom_post_pass is None
    return low, ref


def test_mlp_3d_linears_become_qlinear_kernels(
    mlp: tuple[X86LoweredModule, torch.fx.GraphModule],
) -> None:
    low, _ = mlp
    report = lowering_coverage(low)
    assert report.lowered() == ["linear", "linear_1", "linear_2"]
    assert report.not_lowered() == {}
    assert report.kernel_counts() == {"qlinear": 3}
    # Inductor's own count of linears turned into oneDNN int8 kernels agrees.
    assert report.counters["qlinear_weight_prepack_matcher_count"] == 3
    # up -> relu and proj -> relu fuse the relu (proj's add stays separate: see guards.py).
    assert report.counters["qlinear_unary_matcher_count"] == 2
    assert report.counter_mismatches() == {}


def test_mlp_3d_and_linear_relu_add_match_reference(
    mlp: tuple[X86LoweredModule, torch.fx.GraphModule],
) -> None:
    low, ref = mlp
    torch.manual_seed(1)
    sqnr = _check_numerics(low, ref, torch.randn(4, 16, 64))
    assert sqnr > 40.0, f"lowered vs reference SQNR {sqnr:.1f} dB"


@pytest.mark.parametrize("batch", [pytest.param(2, id="batch2"), pytest.param(9, id="batch9")])
def test_mlp_dynamic_batch_needs_no_recompile(
    mlp: tuple[X86LoweredModule, torch.fx.GraphModule], batch: int
) -> None:
    low, ref = mlp
    compilations = low._recorder.compilations
    torch.manual_seed(batch)
    _check_numerics(low, ref, torch.randn(batch, 16, 64))
    assert low._recorder.compilations == compilations  # the batch dim was compiled symbolic


@pytest.fixture(scope="module")
def cnn() -> tuple[X86LoweredModule, torch.fx.GraphModule]:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    ref = quantize(SmallCNN(), (x,))
    return lower_pt2e_quantized_to_x86(ref, (x,)), ref


def test_cnn_convs_pools_cat_flatten_linear_lower(
    cnn: tuple[X86LoweredModule, torch.fx.GraphModule],
) -> None:
    low, _ = cnn
    report = low.report
    assert report.lowered() == ["conv2d", "conv2d_1", "conv2d_2", "linear"]
    assert report.kernel_counts() == {"qconv": 3, "qlinear": 1}
    c = report.counters
    assert c["qconv_weight_prepack_matcher_count"] == 3
    assert c["qlinear_weight_prepack_matcher_count"] == 1
    assert c["qconv2d_binary_matcher_count"] == 1  # body conv + residual add (+ relu) fused
    assert c["qmaxpool2d_matcher_count"] == 1  # int8 max-pool
    assert c["qcat_matcher_count"] == 1  # int8 cat
    assert c["qreshape_matcher_count"] == 1  # flatten on int8 before the linear
    assert report.counter_mismatches() == {}


def test_cnn_matches_reference(cnn: tuple[X86LoweredModule, torch.fx.GraphModule]) -> None:
    low, ref = cnn
    torch.manual_seed(1)
    sqnr = _check_numerics(low, ref, torch.randn(2, 3, 8, 8))
    assert sqnr > 30.0, f"lowered vs reference SQNR {sqnr:.1f} dB"
