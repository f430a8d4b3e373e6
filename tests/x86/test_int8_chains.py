"""The int8 chains of bench/x86.py's MLP and CNN: each conv / linear hands uint8 to the next.

Pins the fusions that make pt2q's lowering run the same oneDNN kernels as torchao 0.18's
(``torch.compile`` + freezing of its converted program, compared on its output code): every
conv / linear followed by relu and a quantize is one ``onednn.q*_pointwise`` with ``relu``
fused and a uint8 output that the next kernel reads directly; the max-pools between convs
run on uint8; the compiled tier adds only the input quantize and a flatten copy.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn
from torch._inductor.utils import run_and_get_code
from x86_models import quantize

from pt2q.lowering.x86 import CpuInt8Isa, X86LoweredModule, lower_pt2e_quantized_to_x86

QUANTIZE = "quantized_decomposed.quantize_per_tensor.default"
DEQUANTIZE = "quantized_decomposed.dequantize_per_tensor.default"
QLINEAR = "onednn.qlinear_pointwise.default"
QCONV = "onednn.qconv_pointwise.default"


def _bench_models() -> ModuleType:
    """bench/x86_models.py, the models bench/x86.py times (loaded by path: tests/x86 has its own
    x86_models module)."""
    path = Path(__file__).resolve().parents[2] / "bench" / "x86_models.py"
    spec = importlib.util.spec_from_file_location("bench_x86_models", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


BENCH = _bench_models()


VNNI = CpuInt8Isa(vnni=True, amx=False, avx512=True)


def _lower(model: nn.Module, x: torch.Tensor) -> X86LoweredModule:
    """The default config's full-range program lowered for VNNI (the exact path, on any host:
    these tests pin structure, not numerics; payoff=False: the payoff pass times kernels)."""
    torch.manual_seed(0)
    ref = quantize(model, (x,), reduce_range=False)
    return lower_pt2e_quantized_to_x86(ref, (x,), payoff=False, isa=VNNI)


def _kernels(low: X86LoweredModule) -> list[tuple[str, str, torch.dtype | None]]:
    """(op, fused post-op, output dtype) per call in the eager graph; post-op / dtype only for
    the oneDNN kernels."""
    out: list[tuple[str, str, torch.dtype | None]] = []
    for n in low.graph.nodes:
        if n.op != "call_function" or str(n.target) in ("<built-in function getitem>",):
            continue
        if str(n.target) in (QLINEAR, QCONV):
            # (..., output_scale, output_zero_point, output_dtype, postop_name, ...)
            out.append((str(n.target), str(n.args[-3]), n.args[-4]))
        else:
            out.append((str(n.target), "", None))
    return out


# What the compiled tier's C++ wrapper calls: its generated kernels, oneDNN ops through their
# AOTI shims, and other ops through the dispatcher (by schema name).
_WRAPPER_CALL = re.compile(
    r"^\s*(cpp_fused_\w+?)(?:_\d+)?\("
    r"|aoti_torch_cpu__(qconv|qlinear)_pointwise_(\w+)\("
    r'|findSchemaOrThrow\("(\w+)::(\w+)", "(\w*)"\)'
    r"|aoti_torch_proxy_executor_call_function\(proxy_executor, (\d+),",
    re.MULTILINE,
)


def _compiled_kernels(low: X86LoweredModule, x: torch.Tensor) -> list[str]:
    """What the compiled tier's C++ wrapper calls, in order (generated C++ kernels by name):
    the AOTInductor tier's by default, else ``torch.compile``'s output code."""
    with torch.no_grad():
        _, code = run_and_get_code(lambda: (low(x), low(x)))  # eager first call, then compiled
    assert low.compiled
    wrapper = low.aot_wrapper_source or next(c for c in code if "inductor_entry_impl" in c)
    calls = []
    for kernel, onednn, overload, ns, op, schema_overload, proxy in _WRAPPER_CALL.findall(wrapper):
        if kernel:
            calls.append(kernel)
        elif onednn:
            calls.append(f"torch.ops.onednn.{onednn}_pointwise.{overload}")
        elif proxy:  # AOTInductor: an op without a C shim, named in the package's extern nodes
            ns, op = (low.aot_extern_ops or [])[int(proxy)].split("::")
            calls.append(f"torch.ops.{ns}.{op}.default")
        else:
            calls.append(f"torch.ops.{ns}.{op}.{schema_overload or 'default'}")
    return calls


@pytest.fixture(scope="module")
def mlp() -> tuple[X86LoweredModule, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(2, 8, 512)
    return _lower(BENCH.MLP(), x), x


@pytest.fixture(scope="module")
def cnn() -> tuple[X86LoweredModule, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    return _lower(BENCH.CNN(), x), x


def test_mlp_linears_hand_uint8_to_each_other(mlp: tuple[X86LoweredModule, torch.Tensor]) -> None:
    low, _ = mlp
    u8, f32 = torch.uint8, torch.float32
    assert _kernels(low) == [
        (QUANTIZE, "", None),  # the model input, once
        (QLINEAR, "relu", u8),
        (QLINEAR, "relu", u8),
        (QLINEAR, "relu", u8),
        (QLINEAR, "none", f32),  # the model output
    ]
    linears = [n for n in low.graph.nodes if n.target == torch.ops.onednn.qlinear_pointwise.default]
    for prev, nxt in zip(linears, linears[1:], strict=False):
        assert nxt.args[0] is prev  # no quantize / dequantize in between
        assert nxt.args[1:3] == prev.args[-6:-4]  # reads it at the scale / zero point it wrote


def test_mlp_compiled_tier_is_the_onednn_chain(mlp: tuple[X86LoweredModule, torch.Tensor]) -> None:
    low, x = mlp
    qlinear = "torch.ops.onednn.qlinear_pointwise.tensor"
    assert _compiled_kernels(low, x) == ["cpp_fused_quantize_per_tensor", *[qlinear] * 4]


def test_cnn_convs_hand_uint8_through_int8_max_pools(
    cnn: tuple[X86LoweredModule, torch.Tensor],
) -> None:
    low, x = cnn
    u8, f32 = torch.uint8, torch.float32
    pool = "aten.max_pool2d_with_indices.default"
    # Eagerly the pools run between a dequantize and a quantize of the same qparams; the
    # compiled program pools the uint8 values (lowering/x86/pools.py) in Inductor's C++ loops.
    assert _kernels(low) == [
        (QUANTIZE, "", None),
        (QCONV, "relu", u8),
        (QCONV, "relu", u8),
        (DEQUANTIZE, "", None),
        (pool, "", None),
        (QUANTIZE, "", None),
        (QCONV, "relu", u8),
        (DEQUANTIZE, "", None),
        (pool, "", None),
        (QUANTIZE, "", None),
        (DEQUANTIZE, "", None),
        ("aten.reshape.default", "", None),
        (QUANTIZE, "", None),
        (QLINEAR, "none", f32),
    ]
    qconv = "torch.ops.onednn.qconv_pointwise.tensor"
    assert _compiled_kernels(low, x) == [
        "cpp_fused_quantize_per_tensor",  # the model input
        qconv,
        qconv,
        "cpp_fused_max_pool2d_with_indices",  # uint8 in, uint8 out: no ATen quantized op
        qconv,
        # the last pool and the flatten (channels-last uint8 -> (N, 4096)) in one loop
        "cpp_fused_addmm_max_pool2d_with_indices_quantize_per_tensor",
        "torch.ops.onednn.qlinear_pointwise.tensor",
    ]
    assert low.aot_extern_ops == []  # nothing through the proxy executor


def test_compile_options_reach_torch_compile() -> None:
    """The C++ wrapper is a default, not a constraint: ``options`` / ``mode`` pass through."""
    torch.manual_seed(0)
    x = torch.randn(2, 8, 512)
    ref = quantize(BENCH.MLP(), (x,))
    python = lower_pt2e_quantized_to_x86(ref, (x,), payoff=False, options={"cpp_wrapper": False})
    assert python._compile_options["options"] == {"cpp_wrapper": False}
    with torch.no_grad():
        _, code = run_and_get_code(lambda: (python(x), python(x)))
    assert "torch.ops.onednn.qlinear_pointwise.tensor(" in "\n".join(code)
    moded = lower_pt2e_quantized_to_x86(ref, (x,), payoff=False, mode="default")
    assert "options" not in moded._compile_options  # torch.compile refuses mode + options
    with torch.no_grad():
        torch.testing.assert_close(moded(x), moded(x), rtol=0, atol=0)
    assert moded.compiled


def test_reduce_range_mlp_clamps_each_fused_output() -> None:
    """With reduce_range (activations in [0, 127], exact on any ISA) each hidden activation is
    written by a fused qlinear whose uint8 output saturates at 255 only: its [0, 127] clamp
    follows the kernel, one uint8 loop in the compiled tier (the 7-bit form of an activation
    without VNNI gets the same). The model input's quantize is decomposed with its clamp."""
    torch.manual_seed(0)
    x = torch.randn(2, 8, 512)
    ref = quantize(BENCH.MLP(), (x,), reduce_range=True)
    low = lower_pt2e_quantized_to_x86(ref, (x,), payoff=False, isa=VNNI)
    u8, clamp = torch.uint8, ("aten.clamp.default", "", None)  # clamp_max, as export writes it
    assert _kernels(low) == [
        (QUANTIZE, "", None),
        *[(QLINEAR, "relu", u8), clamp] * 3,
        (QLINEAR, "none", torch.float32),
    ]
    qlinear = "torch.ops.onednn.qlinear_pointwise.tensor"
    assert _compiled_kernels(low, x) == [
        "cpp_fused_quantize_per_tensor",
        *[qlinear, "cpp_fused_clamp_max_quantize_per_tensor"] * 3,
        qlinear,
    ]
