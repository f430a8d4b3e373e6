"""x86 LLM lowering: each llm_config scheme's linears onto torch's CPU weight kernels, numerics
vs the converted reference program, packed weight bytes and the lowering report."""

from __future__ import annotations

import pytest
import torch
from host_isa import skip_numerics_unless_host_runs
from llm_programs import SCHEMES, converted_program, kernel_input, linears, qd, weight_range

from pt2q.lowering.llm import llm_linear
from pt2q.lowering.x86.isa import CpuInt8Isa
from pt2q.lowering.x86.llm import WEIGHT_BYTES_FACT, lower_llm_linears
from pt2q.lowering.x86.llm.integer import INT16_WEIGHT_MIN_ROWS
from pt2q.lowering.x86.llm.pack import int16_weight_unit
from pt2q.lowering.x86.llm.tokens import INT16_TOKEN_QMAX
from pt2q.qdq import LoweringStatus, read_report
from pt2q.tolerances import (
    LLM_INT16_TOKENS_STEPS,
    LLM_INT16_WEIGHTS_STEPS,
    LLM_WEIGHT_KERNEL_BF16_STEPS,
    LLM_WEIGHT_KERNEL_FP32_STEPS,
    fixed16_dot_step,
    fixed16_weight_dot_step,
    float_dot_step,
    max_error_in_steps,
)

STEPS = {torch.float32: LLM_WEIGHT_KERNEL_FP32_STEPS, torch.bfloat16: LLM_WEIGHT_KERNEL_BF16_STEPS}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
AVX2 = CpuInt8Isa(vnni=False, amx=False, avx512=False)
VNNI = CpuInt8Isa(vnni=True, amx=False, avx512=True)
ISAS = {"avx2": AVX2, "vnni": VNNI}


@pytest.mark.parametrize("dtype", list(DTYPES), ids=list(DTYPES))
@pytest.mark.parametrize(
    ("scheme", "isa"),
    [(s, "avx2") for s in SCHEMES] + [("8da8w", "vnni")],  # the ISA picks 8da8w's kernel only
)
@pytest.mark.parametrize(("n", "bias"), [(96, True), (40, False)], ids=["n96-bias", "n40-pad"])
def test_one_linear_matches_reference(
    scheme: str, dtype: str, n: int, bias: bool, isa: str
) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(128, n, bias=bias))
    x = torch.randn(2, 7, 128) * 3  # 3-D input: (batch, tokens, features)
    ref = converted_program(model, scheme, (x,))
    step = float_dot_step(
        kernel_input(x, scheme), weight_range(ref, linears(ref)[0]), DTYPES[dtype]
    )
    low = lower_llm_linears(ref, (x,), compute_dtype=DTYPES[dtype], isa=ISAS[isa])
    skip_numerics_unless_host_runs(ISAS[isa])
    err = max_error_in_steps(low(x), ref(x), step)
    assert err <= STEPS[DTYPES[dtype]], f"{scheme} {dtype}: {err:.2f} steps"


def test_8da8w_integer_gemm_on_vnni() -> None:
    """With VNNI, 8da8w runs aten._int_mm on the int8 tokens: exact int32 sums, so the result
    is the reference's up to float32 rounding whatever compute_dtype says (the bf16 weight
    kernel is not involved); without VNNI it keeps _weight_int8pack_mm."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(128, 96), torch.nn.ReLU(), torch.nn.Linear(96, 40))
    x = torch.randn(2, 7, 128) * 3
    ref = converted_program(model, "8da8w", (x,))
    low = lower_llm_linears(ref, (x,), compute_dtype=torch.bfloat16, isa=VNNI)
    report = read_report(low)
    assert report.kernel_counts() == {"aten._int_mm (8da8w)": 2}
    targets = [n.target for n in low.graph.nodes if n.op == "call_function"]
    assert targets.count(torch.ops.aten._int_mm.default) == 2
    assert torch.ops.aten._weight_int8pack_mm.default not in targets
    casts = [
        n.kwargs.get("dtype")
        for n in low.graph.nodes
        if n.target == torch.ops.aten._to_copy.default
    ]
    assert torch.bfloat16 not in casts
    # weight int8 (N, K) + fp32 scales + int32 column sums, per linear
    assert report.facts[WEIGHT_BYTES_FACT] == {
        "linear": 96 * 128 + 96 * 8,
        "linear_1": 40 * 96 + 40 * 8,
    }
    no_vnni = read_report(lower_llm_linears(ref, (x,), isa=AVX2))
    assert no_vnni.kernel_counts() == {"aten._weight_int8pack_mm (8da8w)": 2}
    skip_numerics_unless_host_runs(VNNI)
    # int32 sums, then float32 scaling: float32 rounding level (the one-linear test above
    # checks the steps rule)
    torch.testing.assert_close(low(x), ref(x), rtol=1e-4, atol=1e-4)


def test_int8wo_int16_tokens_on_vnni() -> None:
    """With VNNI and bf16 compute, int8wo runs aten._int_mm on the tokens rounded to 16-bit
    fixed point (two int8 halves): within the int16-token rule, and much closer to the reference
    than the bf16 weight kernel it replaces; fp32 compute, or no VNNI, keeps the weight kernel."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(128, 96), torch.nn.ReLU(), torch.nn.Linear(96, 40))
    x = torch.randn(2, 7, 128) * 3
    x[0, 0, 5] = 400.0  # an outlier token: its small elements get the coarsest rounding
    ref = converted_program(model, "int8wo", (x,))
    low = lower_llm_linears(ref, (x,), compute_dtype=torch.bfloat16, isa=VNNI)
    report = read_report(low)
    assert report.kernel_counts() == {"aten._int_mm (int8wo, int16 tokens)": 2}
    targets = [n.target for n in low.graph.nodes if n.op == "call_function"]
    assert targets.count(torch.ops.aten._int_mm.default) == 2  # both halves in one call
    assert torch.ops.aten._weight_int8pack_mm.default not in targets
    # int8 weight + fp32 scales: no column sums (the tokens are symmetric)
    assert report.facts[WEIGHT_BYTES_FACT] == {
        "linear": 96 * 128 + 96 * 4,
        "linear_1": 40 * 96 + 40 * 4,
    }
    for dtype, isa in ((torch.float32, VNNI), (torch.bfloat16, AVX2)):
        kept = read_report(lower_llm_linears(ref, (x,), compute_dtype=dtype, isa=isa))
        assert kept.kernel_counts() == {"aten._weight_int8pack_mm (int8wo)": 2}
    skip_numerics_unless_host_runs(VNNI)
    first = torch.nn.Sequential(model[0])
    ref1 = converted_program(first, "int8wo", (x,))
    low1 = lower_llm_linears(ref1, (x,), compute_dtype=torch.bfloat16, isa=VNNI)
    step = fixed16_dot_step(x, weight_range(ref1, linears(ref1)[0]), INT16_TOKEN_QMAX)
    assert max_error_in_steps(low1(x), ref1(x), step) <= LLM_INT16_TOKENS_STEPS
    bf16 = lower_llm_linears(ref1, (x,), compute_dtype=torch.bfloat16, isa=AVX2)
    err16, err_bf16 = ((m(x) - ref1(x)).abs().max() for m in (low1, bf16))
    assert err16 < err_bf16 / 4, (float(err16), float(err_bf16))


def test_8da4w_int16_weights_over_many_tokens_on_vnni() -> None:
    """8da4w with VNNI and >= INT16_WEIGHT_MIN_ROWS static rows (a prefill): the int4 groups
    are rebuilt each call as 16-bit fixed-point weights for aten._int_mm on the int8 tokens,
    within the int16-weight rule; a decode step (one row), dynamic rows, no VNNI, or K not a
    multiple of twice the group keep the int4 weight kernel."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(128, 96), torch.nn.ReLU(), torch.nn.Linear(96, 40))
    x = torch.randn(2, INT16_WEIGHT_MIN_ROWS // 2, 128) * 3
    ref = converted_program(model, "8da4w", (x,))
    low = lower_llm_linears(ref, (x,), isa=VNNI)
    report = read_report(low)
    # linear_1's K = 96 is not a multiple of 2 x 32
    assert report.kernel_counts() == {
        "aten._int_mm (8da4w, int16 weights)": 1,
        "aten._weight_int4pack_mm_for_cpu (8da4w)": 1,
    }
    # planar nibbles + per-group multipliers (fp32) + int32 row sums + fp32 unit
    assert report.facts[WEIGHT_BYTES_FACT]["linear"] == 96 * 64 + 96 * 4 * 4 + 96 * 4 + 96 * 4
    first = torch.nn.Sequential(model[0])
    ref1 = converted_program(first, "8da4w", (x,))
    one = torch.randn(1, 1, 128)
    decode = converted_program(first, "8da4w", (one,))
    batch = torch.export.Dim("batch", max=64)
    dynamic = converted_program(first, "8da4w", (x,), dynamic_shapes=({0: batch},))
    for program, example, isa in ((decode, one, VNNI), (dynamic, x, VNNI), (ref1, x, AVX2)):
        kept = read_report(lower_llm_linears(program, (example,), isa=isa))
        assert kept.kernel_counts() == {"aten._weight_int4pack_mm_for_cpu (8da4w)": 1}
    skip_numerics_unless_host_runs(VNNI)
    low1 = lower_llm_linears(ref1, (x,), isa=VNNI)
    (node,) = linears(ref1)
    unit = int16_weight_unit(llm_linear(ref1, node).weight)
    step = fixed16_weight_dot_step(kernel_input(x, "8da4w"), weight_range(ref1, node), unit)
    assert max_error_in_steps(low1(x), ref1(x), step) <= LLM_INT16_WEIGHTS_STEPS


@pytest.mark.slow  # Inductor compiles each program
@pytest.mark.parametrize(
    ("scheme", "isa", "dtype", "tokens"),
    [
        ("8da8w", "vnni", "bf16", 1),  # aten._int_mm on int8 tokens
        ("int8wo", "vnni", "bf16", 1),  # aten._int_mm on int16 tokens
        ("int8wo", "avx2", "bf16", 1),  # aten._weight_int8pack_mm
        ("8da4w", "vnni", "fp32", 1),  # aten._weight_int4pack_mm_for_cpu
        ("8da4w", "vnni", "fp32", INT16_WEIGHT_MIN_ROWS),  # aten._int_mm on int16 weights
    ],
)
def test_compiled_matches_eager(scheme: str, isa: str, dtype: str, tokens: int) -> None:
    """Batch 1 through torch.compile equals the eager lowering, for one token (a decode step)
    and a prefill. Inductor once handed aten._int_mm a (1, K) view with strides (0, 1), which
    torch's CPU _int_mm reads as leading dimension 0: the compiled 8da8w decode step returned
    garbage."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(128, 96), torch.nn.ReLU(), torch.nn.Linear(96, 40))
    x = torch.randn(1, tokens, 128)
    ref = converted_program(model, scheme, (x,))
    low = lower_llm_linears(ref, compute_dtype=DTYPES[dtype], isa=ISAS[isa])
    torch._dynamo.reset()
    with torch.no_grad():
        got = torch.compile(low)(x)
    torch.testing.assert_close(got, low(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_report_statuses_and_kernels(scheme: str) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 96), torch.nn.ReLU(), torch.nn.Linear(96, 32))
    x = torch.randn(3, 64)
    ref = converted_program(model, scheme, (x,))
    before = ref.code
    low = lower_llm_linears(ref, (x,), isa=AVX2)
    assert ref.code == before  # the reference program is not modified
    report = read_report(low)
    kernel = "aten._weight_int4pack_mm_for_cpu" if "4" in scheme else "aten._weight_int8pack_mm"
    assert report.kernel_counts() == {f"{kernel} ({scheme})": 2}
    fused = report.with_status(LoweringStatus.FUSED)
    # the weight dequantizes, and for 8da* the inlined choose / quantize / dequantize per token
    assert len(fused) == (8 if scheme.startswith("8da") else 2)
    assert not report.not_lowered
    targets = {n.target for n in low.graph.nodes if n.op == "call_function"}
    assert torch.ops.aten.linear.default not in targets
    assert qd.dequantize_per_channel.default not in targets
    assert qd.dequantize_per_channel_group.default not in targets
    assert not any(str(t).startswith("quantized_decomposed") for t in targets)


class _Qkv(torch.nn.Module):
    """q / k / v projections of one activation."""

    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v = (torch.nn.Linear(64, 32) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.q(x) + self.k(x) * self.v(x)


@pytest.mark.parametrize(
    ("scheme", "dtype", "isa"),
    [("8da4w", "fp32", "avx2"), ("8da8w", "fp32", "vnni"), ("int8wo", "bf16", "vnni")],
)
def test_shared_tokens_are_quantized_once(scheme: str, dtype: str, isa: str) -> None:
    """q / k / v of one activation: one inlined token quantization (8da*'s per-token int8 for
    the weight kernel or _int_mm, int8wo's 16-bit halves)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64)
    ref = converted_program(_Qkv(), scheme, (x,))
    low = lower_llm_linears(ref, (x,), compute_dtype=DTYPES[dtype], isa=ISAS[isa])
    amax = [n for n in low.graph.nodes if n.target == torch.ops.aten.amax.default]
    assert len(amax) == 1
    skip_numerics_unless_host_runs(ISAS[isa])
    # q + k * v of three kernels, each within its rule: fp32 rounding level overall
    torch.testing.assert_close(low(x), ref(x), rtol=1e-4, atol=1e-4)


@pytest.mark.slow  # Inductor's freezing passes run eagerly inside the x86 lowering
def test_through_lower_pt2e_quantized_to_x86() -> None:
    from pt2q.lowering import lower_pt2e_quantized_to_x86

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 96), torch.nn.ReLU(), torch.nn.Linear(96, 32))
    x = torch.randn(2, 5, 64)
    ref = converted_program(model, "8da4w", (x,))
    low = lower_pt2e_quantized_to_x86(ref, (x,), compile=False)
    report = read_report(low)
    assert report.kernel_counts() == {"aten._weight_int4pack_mm_for_cpu (8da4w)": 2}
    assert len(report.facts[WEIGHT_BYTES_FACT]) == 2
    # the per-token activation quantization survives the oneDNN pipeline (inlined, exact)
    torch.testing.assert_close(low(x), lower_llm_linears(ref)(x), rtol=0, atol=1e-6)


@pytest.mark.slow  # Inductor's freezing passes run eagerly inside the x86 lowering
def test_x86_lowering_llm_compute_dtype() -> None:
    """lower_pt2e_quantized_to_x86's default llm_compute_dtype (bfloat16) reaches the fast
    paths: on VNNI, int8wo's integer GEMM on int16 tokens; float32 keeps the weight kernel."""
    from pt2q.lowering import lower_pt2e_quantized_to_x86

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 96), torch.nn.ReLU(), torch.nn.Linear(96, 32))
    x = torch.randn(2, 5, 64)
    ref = converted_program(model, "int8wo", (x,))
    fast = lower_pt2e_quantized_to_x86(ref, (x,), compile=False, isa=VNNI)
    assert read_report(fast).kernel_counts() == {"aten._int_mm (int8wo, int16 tokens)": 2}
    fp32 = lower_pt2e_quantized_to_x86(
        ref, (x,), compile=False, isa=VNNI, llm_compute_dtype=torch.float32
    )
    assert read_report(fp32).kernel_counts() == {"aten._weight_int8pack_mm (int8wo)": 2}
    skip_numerics_unless_host_runs(VNNI)
    torch.testing.assert_close(fast(x), ref(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("scheme", "group", "goal"),
    [("int8wo", 32, 0.26), ("int4wo", 32, 0.20), ("8da4w", 32, 0.20), ("int4wo", 128, 0.15)],
)
def test_weight_bytes_vs_fp32(scheme: str, group: int, goal: float) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(1024, 1024, bias=False))
    x = torch.randn(1, 1024)
    program = converted_program(model, scheme, (x,), group=group)
    low = lower_llm_linears(program, compute_dtype=torch.float32)  # float32 scales / zeros
    (nbytes,) = read_report(low).facts[WEIGHT_BYTES_FACT].values()
    ratio = nbytes / (1024 * 1024 * 4)
    assert ratio <= goal, f"{scheme} g{group}: {ratio:.3f}x of fp32"
    # exactly the packed tensors: int8 N*K + N fp32 scales; int4 N*K/2 + (K/g)*N*2 fp32
    int8 = scheme == "int8wo"
    assert nbytes == (1024 * 1024 + 1024 * 4 if int8 else 1024 * 512 + (1024 // group) * 1024 * 8)


def test_int4_zero_points_are_converted_exactly() -> None:
    """(u - 8) * s + (8 - zp) * s == (u - zp) * s up to one rounding of each product."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 16, bias=False))
    eye = torch.eye(64)  # on the identity, a linear returns its (dequantized) weight, transposed
    ref = converted_program(model, "int4wo", (eye,))
    (node,) = linears(ref)
    assert node.args[1].target == qd.dequantize_per_channel_group.default
    assert bool((weight_range(ref, node) > 0).all())
    got, want = lower_llm_linears(ref, compute_dtype=torch.float32)(eye).t(), ref(eye).t()
    ulp = torch.finfo(torch.float32).eps * weight_range(ref, node).float()
    assert bool(((got - want).abs() <= ulp).all())


@pytest.mark.parametrize(("scheme", "group", "reason"), [("int4wo", 16, "group size 16")])
def test_unsupported_group_is_kept_with_reason(scheme: str, group: int, reason: str) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32))
    x = torch.randn(2, 64)
    ref = converted_program(model, scheme, (x,), group=group)
    low = lower_llm_linears(ref, (x,))
    (linear,) = [d for d in read_report(low) if d.op == "aten.linear.default"]
    assert linear.status is LoweringStatus.REFERENCE and reason in linear.reason
    torch.testing.assert_close(low(x), ref(x), rtol=0, atol=0)  # still runs, as reference


def test_dynamic_batch_dimension() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32))
    x = torch.randn(4, 3, 64)
    batch = torch.export.Dim("batch", min=1, max=64)
    ref = converted_program(model, "int4wo", (x,), dynamic_shapes=({0: batch},))
    low = lower_llm_linears(ref, (x,), compute_dtype=torch.float32)
    y = torch.randn(9, 3, 64)
    assert low(y).shape == (9, 3, 32)
    torch.testing.assert_close(low(y), ref(y), rtol=1e-5, atol=1e-5)


def test_rejects_non_graph_module() -> None:
    with pytest.raises(TypeError, match="GraphModule returned by convert_pt2e"):
        lower_llm_linears(torch.nn.Linear(2, 2))  # type: ignore[arg-type]


def _one_8da8w_linear_lowered(
    isa: CpuInt8Isa,
) -> tuple[torch.nn.Sequential, torch.Tensor, torch.fx.GraphModule, torch.fx.GraphModule]:
    """One Linear(128, 96) under llm_config("8da8w"), through lower_pt2e_quantized_to_x86 for
    ``isa`` (no payoff): (model, input, reference, lowered)."""
    from pt2q.lowering.x86 import lower_pt2e_quantized_to_x86

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(128, 96))
    x = torch.randn(2, 7, 128) * 3
    ref = converted_program(model, "8da8w", (x,))
    return model, x, ref, lower_pt2e_quantized_to_x86(ref, (x,), isa=isa, payoff=False)


def test_8da8w_in_the_x86_lowering_is_a_prepacked_onednn_qlinear() -> None:
    """lower_pt2e_quantized_to_x86 on VNNI leaves 8da8w's integer GEMM to Inductor's oneDNN
    qlinear (prepacked weights, uint8 tokens with scale 1, the token zero point and scale
    applied after it; integer.rewrite_qlinear_tokens), which X86InductorQuantizer's per-token
    linears (its default) run on: within the float32 LLM rule of the reference, eager first
    call and AOTInductor tier alike. lower_llm_linears (eager, no Inductor) keeps aten._int_mm."""
    model, x, ref, low = _one_8da8w_linear_lowered(VNNI)
    assert low.report.kernel_counts() == {"onednn.qlinear_pointwise (8da8w)": 1}
    onednn = [n for n in low.graph.nodes if n.target == torch.ops.onednn.qlinear_pointwise.default]
    assert len(onednn) == 1 and onednn[0].args[1:3] == (1.0, 0)  # the tokens' scale comes after
    assert torch.ops.aten._int_mm.default not in {n.target for n in low.graph.nodes}
    skip_numerics_unless_host_runs(VNNI)
    step = float_dot_step(kernel_input(x, "8da8w"), weight_range(ref, linears(ref)[0]))
    with torch.no_grad():
        expected = ref(x)
        for got in (low(x), low(x)):  # eager first call, then the compiled tier
            err = max_error_in_steps(got, expected, step)
            assert err <= LLM_WEIGHT_KERNEL_FP32_STEPS, f"{err:.2f} steps"


def test_uint8_tokens_are_the_reference_tokens_plus_128() -> None:
    """tokens.token_u8 (the qlinear path's tokens) equals quantize_per_token + 128 bit for bit,
    ties at .5 included, compiled by Inductor too."""
    from pt2q.lowering.x86.llm.tokens import token_q, token_u8

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 256, generator=g) * torch.logspace(-3, 3, 64).unsqueeze(1)
    x[0, :6] = torch.tensor([0.5, 1.5, -0.5, 2.5, -1.5, 127.0])  # rows with exact ties
    xq, s, z = token_q(x)
    for fn in (token_u8, torch.compile(token_u8)):
        xu, s8, z8 = fn(x)
        assert xu.dtype == torch.uint8
        assert torch.equal(xu.to(torch.int32), xq.to(torch.int32) + 128)
        assert torch.equal(s8, s) and torch.equal(z8, z)


def _seven_bit_tokens(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scalar definition of the 7-bit tokens: the reference's per-token scale doubled, its
    uint8 zero point halved, both rounded half to even; (int64 tokens, scale, zero point)."""
    from torch.ao.quantization.fx._decomposed import _choose_qparams_per_token_asymmetric_impl

    s, z = _choose_qparams_per_token_asymmetric_impl(x, torch.int8)
    s7, z7 = s.double() * 2, torch.round((z.double() + 128) / 2)
    t7 = torch.clamp(torch.round(x.double() / s7) + z7, 0, 127).to(torch.int64)
    return t7, s7, z7


def test_seven_bit_tokens_are_the_reference_scale_doubled() -> None:
    """tokens.token_u7 (8da8w's tokens without VNNI) equals its scalar definition bit for bit,
    ties at .5 included, compiled by Inductor too; its zero point minus 128 lets the 8-bit
    epilogue apply unchanged."""
    from pt2q.lowering.x86.llm.tokens import token_u7

    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 256, generator=g) * torch.logspace(-3, 3, 64).unsqueeze(1)
    x[0, :6] = torch.tensor([0.5, 1.5, -0.5, 2.5, -1.5, 127.0])
    t7, s7, z7 = _seven_bit_tokens(x)
    assert int(t7.max()) == 127 and int(t7.min()) == 0
    for fn in (token_u7, torch.compile(token_u7)):
        xu, s, z = fn(x)
        assert xu.dtype == torch.uint8
        assert torch.equal(xu.to(torch.int64), t7)
        assert torch.equal(s.double(), s7) and torch.equal(z.double() + 128, z7)


def test_8da8w_without_vnni_is_a_qlinear_on_7bit_tokens() -> None:
    """Without VNNI (mocked) the x86 lowering keeps 8da8w on oneDNN's qlinear with 7-bit tokens
    (exact in vpmaddubsw's int16 pairs), not on the bf16 weight kernel, which is slower than
    float32 on AVX2: it returns the 7-bit tokens' integer dot products, scaled, within the
    float32 LLM rule, eager and compiled alike; against the reference it is one bit coarser."""
    model, x, ref, low = _one_8da8w_linear_lowered(AVX2)
    assert low.report.kernel_counts() == {"onednn.qlinear_pointwise (8da8w, 7-bit tokens)": 1}
    lin = llm_linear(ref, linears(ref)[0])
    t7, s7, z7 = _seven_bit_tokens(x.reshape(-1, 128))
    w = lin.weight.q.double() * lin.weight.scale.double().reshape(-1, 1)
    expected7 = ((t7.double() - z7) * s7) @ w.T + model[0].bias.double()
    step = float_dot_step(kernel_input(x, "8da8w"), weight_range(ref, linears(ref)[0]))
    with torch.no_grad():
        reference, fp32 = ref(x), model(x)
        for got in (low(x), low(x)):  # eager first call, then the compiled tier
            err = max_error_in_steps(got, expected7.float().reshape(got.shape), step)
            assert err <= LLM_WEIGHT_KERNEL_FP32_STEPS, f"{err:.2f} steps"
            noise = (got - fp32).pow(2).sum() / (reference - fp32).pow(2).sum()
            assert 1.5 < float(noise) < 8.0  # one bit coarser: ~4x the reference's noise


@pytest.mark.slow  # Inductor's freezing passes run eagerly inside the x86 lowering
@pytest.mark.parametrize("isa", ["vnni", "avx2"])
def test_linears_sharing_tokens_are_one_qlinear(isa: str) -> None:
    """q / k / v of one activation (8da8w) in the x86 lowering: one oneDNN qlinear over their
    weights stacked along N, each linear its slice of the columns (MiniLM 1.42x -> 1.71x fp32
    on emulated AVX2), on any ISA (without VNNI, on the shared 7-bit tokens); the report still
    has each linear LOWERED; with VNNI the output is the reference's to fp32 rounding."""
    from pt2q.lowering.x86 import lower_pt2e_quantized_to_x86

    torch.manual_seed(0)
    x = torch.randn(2, 3, 64)
    ref = converted_program(_Qkv(), "8da8w", (x,))
    low = lower_pt2e_quantized_to_x86(ref, (x,), isa=ISAS[isa], payoff=False, compile=False)
    qlinears = [
        n for n in low.graph.nodes if n.target == torch.ops.onednn.qlinear_pointwise.default
    ]
    assert len(qlinears) == 1
    assert qlinears[0].meta["val"].shape[-1] == 3 * 32  # q, k, v stacked
    assert [d.node for d in low.report.lowered] == ["linear", "linear_1", "linear_2"]
    if isa == "vnni":  # exact int32 sums, float32 epilogue: fp32 rounding level overall
        skip_numerics_unless_host_runs(VNNI)
        with torch.no_grad():
            torch.testing.assert_close(low(x), ref(x), rtol=1e-4, atol=1e-4)
