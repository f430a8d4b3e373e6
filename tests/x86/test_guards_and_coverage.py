"""Graph-level checks of the x86 lowering passes and its static coverage (no compilation)."""

from __future__ import annotations

import copy

import pytest
import torch
from x86_models import MLP3d, TinyLinear, quantize

from pt2q.lowering.x86 import CpuInt8Isa, lower_pt2e_quantized_to_x86
from pt2q.lowering.x86.coverage import classify
from pt2q.lowering.x86.guards import keep_inexact_activations_float, separate_unary_from_binary
from pt2q.lowering.x86.isa import max_exact_activation_qmax

AVX2 = CpuInt8Isa(vnni=False, amx=False, avx512=False)
VNNI = CpuInt8Isa(vnni=True, amx=False, avx512=True)
aten = torch.ops.aten
qd = torch.ops.quantized_decomposed


def _targets(gm: torch.fx.GraphModule) -> list[str]:
    return [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]


@pytest.fixture(scope="module")
def full_range() -> torch.fx.GraphModule:
    """TinyLinear quantized with uint8 activations over [0, 255] (no reduce_range)."""
    torch.manual_seed(0)
    return quantize(TinyLinear(), (torch.randn(4, 32),), reduce_range=False)


def test_exact_activation_range_by_isa() -> None:
    assert max_exact_activation_qmax(AVX2, torch.uint8) == 127
    assert max_exact_activation_qmax(VNNI, torch.uint8) == 255
    with pytest.raises(ValueError, match="expected an activation dtype torch.uint8 or torch.int8"):
        max_exact_activation_qmax(AVX2, torch.float32)


def test_full_range_is_lowerable_with_vnni_only(full_range: torch.fx.GraphModule) -> None:
    assert {k: v[2] for k, v in classify(full_range, VNNI).items()} == {
        "linear": "",
        "linear_1": "",
    }
    reasons = {k: v[2] for k, v in classify(full_range, AVX2).items()}
    assert list(reasons) == ["linear", "linear_1"]
    assert reasons["linear"].startswith(
        "activation dequantize_per_tensor_default is torch.uint8 with quant_max 255; on this CPU "
        "(avx2 (no vnni, no amx)) oneDNN's u8*s8 kernels are exact only up to quant_max 127"
    )


def test_inexact_activations_become_plain_arithmetic(full_range: torch.fx.GraphModule) -> None:
    gm = torch.fx.GraphModule(full_range, copy.deepcopy(full_range.graph))
    x = torch.randn(4, 32)  # exported with a static batch of 4
    with torch.no_grad():
        expected = full_range(x)
    assert keep_inexact_activations_float(gm, AVX2)
    targets = _targets(gm)
    # Each linear's activation dequantize is now (x.f32 - zp) * scale; weights still dequantize.
    assert targets.count(str(qd.dequantize_per_tensor.default)) == 0
    assert targets.count(str(qd.dequantize_per_channel.default)) == 2
    assert targets.count(str(aten._to_copy.default)) == 2
    with torch.no_grad():
        assert torch.equal(gm(x), expected)  # bit-identical to the reference program
    assert not keep_inexact_activations_float(gm, VNNI)
    assert not keep_inexact_activations_float(full_range, VNNI)  # nothing to do with VNNI


def test_unary_then_add_gets_a_barrier() -> None:
    torch.manual_seed(0)
    ref = quantize(MLP3d(), (torch.randn(2, 4, 64),), reduce_range=True)
    gm = torch.fx.GraphModule(ref, copy.deepcopy(ref.graph))
    assert separate_unary_from_binary(gm)
    relu_users = [
        [str(u.target) for u in n.users] for n in gm.graph.nodes if n.target == aten.relu.default
    ]
    # up -> relu feeds a quantize; proj -> relu now feeds the * 1.0 barrier, not the add.
    assert relu_users == [[str(qd.quantize_per_tensor.default)], [str(aten.mul.Tensor)]]
    x = torch.randn(2, 4, 64)
    with torch.no_grad():
        assert torch.equal(gm(x), ref(x))
    assert not separate_unary_from_binary(gm)  # idempotent: the add no longer follows a relu


def test_errors_name_the_argument(full_range: torch.fx.GraphModule) -> None:
    with pytest.raises(ValueError, match="example_inputs is required"):
        lower_pt2e_quantized_to_x86(full_range)
    with pytest.raises(NotImplementedError, match=r"compile=False"):
        lower_pt2e_quantized_to_x86(full_range, (torch.randn(4, 32),), compile=False)
    with pytest.raises(TypeError, match="got Linear"):
        lower_pt2e_quantized_to_x86(torch.nn.Linear(2, 2), (torch.randn(1, 2),))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="takes 1 flat inputs, example_inputs has 2"):
        lower_pt2e_quantized_to_x86(full_range, (torch.randn(4, 32), torch.randn(4, 32)))
