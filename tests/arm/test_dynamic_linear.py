"""Dynamic linear (XNNPACK is_dynamic=True) lowered onto pt2q_arm.linear_dynamic: per-row
activation quantization vs its float64 reference, per-tensor mode vs the reference program."""

from __future__ import annotations

import pytest
import torch
from torch.fx import GraphModule

from pt2q.lowering.arm import lower_pt2e_quantized_to_arm, lowering_report
from pt2q.lowering.arm.ops import load_ops
from pt2q.lowering.arm.reference import per_row_reference
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizers import XNNPACKQuantizer, get_symmetric_quantization_config
from pt2q.tolerances import KERNEL_VS_FLOAT_REFERENCE_STEPS

aten = torch.ops.aten
qd = torch.ops.quantized_decomposed
EPS = torch.finfo(torch.float32).eps
VARIANTS = ["qd8-f32-gemm/scalar", "qd8-f32-gemm/4x16-neon-dot"]


def _inputs(m: int, k: int, seed: int) -> torch.Tensor:
    """Rows of very different magnitudes, some all-positive: per-row qparams matter."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, k, generator=g) * torch.logspace(-2, 1, m)[:, None]
    x[::3] = x[::3].abs()
    return x


def _convert(model: torch.nn.Module, x: torch.Tensor) -> GraphModule:
    gm = torch.export.export(model, (x,)).module()
    cfg = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True)
    prepared = prepare_pt2e(gm, XNNPACKQuantizer().set_global(cfg))
    prepared(x)
    return convert_pt2e(prepared)


@pytest.fixture(scope="module")
def mlp() -> tuple[torch.nn.Module, GraphModule, GraphModule]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(40, 35), torch.nn.ReLU(), torch.nn.Linear(35, 10)
    ).eval()
    x = _inputs(9, 40, seed=1)
    reference = _convert(model, x)
    return model, reference, lower_pt2e_quantized_to_arm(reference, (x,))


def _steps(got: torch.Tensor, want: torch.Tensor, a_scale, w_scale) -> float:
    """Largest |got - want| in units of one accumulator step s_a[row] * s_w[channel]."""
    unit = a_scale.double()[:, None] * w_scale.double()[None, :]
    return float(((got.detach().double() - want) / unit).abs().max())


def test_dynamic_linears_lowered(mlp) -> None:
    _, _, lowered = mlp
    targets = [n.target for n in lowered.graph.nodes if n.op == "call_function"]
    assert targets.count(torch.ops.pt2q_arm.linear_dynamic.default) == 2
    assert aten.linear.default not in targets
    assert qd.choose_qparams.tensor not in targets
    assert qd.quantize_per_tensor.tensor not in targets
    assert targets.count(aten.relu.default) == 1  # float ReLU between the layers stays
    report = lowering_report(lowered)
    linears = [d for d in report.lowered if d.op == "aten.linear.default"]
    assert len(linears) == 2 and all(d.kernel.startswith("qd8-f32-gemm/") for d in linears)


@pytest.mark.parametrize("variant", VARIANTS)
def test_per_row_kernel_matches_per_row_reference(variant: str) -> None:
    load_ops()
    g = torch.Generator().manual_seed(2)
    m, n, k = 13, 37, 70
    x = _inputs(m, k, seed=3)
    w = torch.randint(-127, 128, (n, k), dtype=torch.int8, generator=g)
    ws = torch.rand(n, generator=g) * 0.02 + 1e-3
    bias = torch.randn(n, generator=g)
    arm = torch.ops.pt2q_arm
    packed = arm.pack_gemm_dynamic(w, ws, variant)
    got = arm.linear_dynamic(x, packed, bias, n, -128, 127, EPS, True, variant)
    want, a_scale = per_row_reference(x, w, ws, bias, EPS)
    assert _steps(got, want, a_scale, ws) <= KERNEL_VS_FLOAT_REFERENCE_STEPS
    no_bias = arm.linear_dynamic(x, packed, None, n, -128, 127, EPS, True, variant)
    want0, _ = per_row_reference(x, w, ws, None, EPS)
    assert _steps(no_bias, want0, a_scale, ws) <= KERNEL_VS_FLOAT_REFERENCE_STEPS


@pytest.mark.parametrize("variant", VARIANTS)
def test_per_tensor_mode_matches_reference_program(variant: str) -> None:
    """per_row=False is the converted program's math: one choose_qparams for the tensor."""
    load_ops()
    torch.manual_seed(4)
    lin = torch.nn.Linear(24, 19).eval()
    x = _inputs(6, 24, seed=5)
    reference = _convert(lin, x)
    want = reference(x).detach().double()
    w_node = next(n for n in reference.graph.nodes if n.target == qd.dequantize_per_channel.default)
    w = getattr(reference, w_node.args[0].target)
    ws = getattr(reference, w_node.args[1].target).float()
    arm = torch.ops.pt2q_arm
    packed = arm.pack_gemm_dynamic(w, ws, variant)
    got = arm.linear_dynamic(x, packed, lin.bias.detach(), 19, -128, 127, 2**-12, False, variant)
    s, _ = qd.choose_qparams.tensor(x, -128, 127, 2**-12, torch.int8)
    assert _steps(got, want, s.float().expand(6), ws) <= KERNEL_VS_FLOAT_REFERENCE_STEPS


def test_lowered_linear_matches_per_row_reference() -> None:
    torch.manual_seed(6)
    lin = torch.nn.Linear(33, 21).eval()
    x = _inputs(7, 33, seed=9)
    reference = _convert(lin, x)
    dqw = next(n for n in reference.graph.nodes if n.target == qd.dequantize_per_channel.default)
    w, ws = getattr(reference, dqw.args[0].target), getattr(reference, dqw.args[1].target)
    eps = next(n for n in reference.graph.nodes if n.target == qd.choose_qparams.tensor).args[3]
    lowered = lower_pt2e_quantized_to_arm(reference, (x,))
    want, a_scale = per_row_reference(x, w, ws.float(), lin.bias.detach(), eps)
    assert _steps(lowered(x), want, a_scale, ws.float()) <= KERNEL_VS_FLOAT_REFERENCE_STEPS


def test_per_row_is_closer_to_float_than_per_tensor(mlp) -> None:
    model, reference, lowered = mlp
    x = _inputs(9, 40, seed=7)
    with torch.no_grad():
        exact = model(x)
    err_row = (lowered(x) - exact).abs().max(dim=1).values
    err_tensor = (reference(x) - exact).abs().max(dim=1).values
    # the small-magnitude rows gain most: per-tensor quantizes them with the largest row's step
    assert float(err_row[:3].max()) < 0.2 * float(err_tensor[:3].max())


def test_lowered_dynamic_program_survives_export(mlp) -> None:
    _, _, lowered = mlp
    x = _inputs(9, 40, seed=8)
    ep = torch.export.export(lowered, (x,))
    ops = {n.target for n in ep.graph.nodes if n.op == "call_function"}
    assert torch.ops.pt2q_arm.linear_dynamic.default in ops
    torch.testing.assert_close(ep.module()(x), lowered(x), rtol=0, atol=0)


def test_dynamic_per_row_false_lowers_the_reference_programs_math() -> None:
    """The switch is an argument of the lowering (and in its report), not a module global."""
    torch.manual_seed(10)
    lin = torch.nn.Linear(26, 15).eval()
    x = _inputs(5, 26, seed=11)
    reference = _convert(lin, x)
    lowered = lower_pt2e_quantized_to_arm(reference, (x,), dynamic_per_row=False)
    (op,) = [
        n for n in lowered.graph.nodes if n.target == torch.ops.pt2q_arm.linear_dynamic.default
    ]
    assert op.args[7] is False  # linear_dynamic(x, packed, bias, n, qmin, qmax, eps, per_row, ...)
    assert lowering_report(lowered).facts["dynamic_per_row"] is False
    dqw = next(n for n in reference.graph.nodes if n.target == qd.dequantize_per_channel.default)
    ws = getattr(reference, dqw.args[1].target).float()
    eps = next(n for n in reference.graph.nodes if n.target == qd.choose_qparams.tensor).args[3]
    s, _ = qd.choose_qparams.tensor(x, -128, 127, eps, torch.int8)
    want = reference(x).detach().double()
    assert _steps(lowered(x), want, s.float().expand(5), ws) <= KERNEL_VS_FLOAT_REFERENCE_STEPS


class _FfnBlock(torch.nn.Module):
    """Post-LN FFN: the static config's linears are read only by GELU and the float residual
    add, so XNNPACKQuantizer makes them per-token dynamic (float_read_linears.py)."""

    def __init__(self) -> None:
        super().__init__()
        self.up, self.down = torch.nn.Linear(32, 64), torch.nn.Linear(64, 32)
        self.norm = torch.nn.LayerNorm(32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.down(torch.nn.functional.gelu(self.up(x))))


def test_static_config_float_read_linears_lower_to_dynamic_gemms() -> None:
    torch.manual_seed(4)
    model, x = _FfnBlock().eval(), torch.randn(2, 6, 32)
    cfg = get_symmetric_quantization_config(is_per_channel=True)  # static
    prepared = prepare_pt2e(
        torch.export.export(model, (x,)).module(), XNNPACKQuantizer().set_global(cfg)
    )
    prepared(x)
    reference = convert_pt2e(prepared)
    lowered = lower_pt2e_quantized_to_arm(reference, (x,))
    linears = [d for d in lowering_report(lowered).lowered if d.op == "aten.linear.default"]
    assert len(linears) == 2 and all(d.kernel.startswith("qd8-f32-gemm/") for d in linears)
    targets = [n.target for n in lowered.graph.nodes if n.op == "call_function"]
    assert aten.linear.default not in targets
    with torch.no_grad():
        want, got = reference(x), lowered(x)
    # per-token dynamic in the reference and in the kernel: the same rows, the same integers
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
