"""The x86 lowering computes what the reference program computes, kernel by kernel and tier by
tier, on a small ResNet (residual conv + add + relu, the fused binary kernel, a linear head).

* Every oneDNN kernel of the lowered graph, fed its own int8 inputs, returns the exact (float64)
  value of the quantized math those inputs and its arguments define (dequantize, conv / linear,
  bias, fused add of the dequantized residual, relu, requantize), rounded once: a kernel whose
  requantization, zero point, bias or residual scale departs from the reference fails here even
  when it is only one step off everywhere, which a whole-model SQNR would blur.
* Both tiers of ``X86LoweredModule`` (the eager graph of the first call, the compiled program of
  later calls) are as accurate against float as the reference program on the default
  (full-range uint8) config, by the SQNR of the outputs of 16 inputs together.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.fx import GraphModule, Interpreter, Node
from torch.fx.operator_schemas import normalize_function
from x86_models import ResidualNet, quantize, sqnr_db

from pt2q.lowering.x86 import lower_pt2e_quantized_to_x86
from pt2q.lowering.x86.patterns import BINARY_POST_OPS, ONEDNN_KERNELS, UNARY_POST_OPS
from pt2q.qdq.engine import constant_value
from pt2q.qdq.views import QuantizedOp, act_q, quantized_op
from pt2q.tolerances import (
    IN_RANGE_ROUNDING_STEPS,
    ISA_ADAPTED_MAX_SQNR_LOSS_DB,
    KERNEL_VS_FLOAT_REFERENCE_STEPS,
    max_error_in_steps,
)

_KERNELS = frozenset().union(*ONEDNN_KERNELS.values())
F = torch.nn.functional


class _KernelCalls(Interpreter):
    """Runs the lowered graph; keeps each kernel's arguments (by schema name) and output."""

    def __init__(self, gm: GraphModule) -> None:
        super().__init__(gm)
        self.calls: list[tuple[Node, dict[str, Any], torch.Tensor]] = []

    def run_node(self, n: Node) -> Any:
        if n.target not in _KERNELS:
            return super().run_node(n)
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        normalized = normalize_function(n.target, args, kwargs, normalize_to_only_use_kwargs=True)
        assert normalized is not None
        # The binary kernel writes its output into the residual (qaccum): keep a copy of it.
        named = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in normalized.kwargs.items()}  # fmt: skip
        out = super().run_node(n)
        self.calls.append((n, named, out.clone()))
        return out


def _reference_ops(ref: GraphModule) -> dict[str, QuantizedOp]:
    """Weight-scale constant name -> the reference program's view of that conv / linear (the
    lowered kernel keeps the same scale constant, see lowering/x86/report.py)."""
    out: dict[str, QuantizedOp] = {}
    for n in ref.graph.nodes:
        if n.target in (torch.ops.aten.conv2d.default, torch.ops.aten.linear.default):
            view = quantized_op(n, weight_arg=1, post_op_targets=UNARY_POST_OPS | BINARY_POST_OPS)
            assert view.weight is not None and isinstance(view.weight.scale, Node)
            out[str(view.weight.scale.target)] = view
    return out


def _check_arguments(named: dict[str, Any], view: QuantizedOp) -> None:
    """The kernel's qparams and post-ops are the reference's: input, residual and output."""
    act, name = view.inputs[0], view.anchor.name
    assert act is not None
    assert (named["x_scale"], named["x_zero_point"]) == (act.scale, act.zero_point), name
    adds = [p for p in view.post_ops if p.target in BINARY_POST_OPS]
    other = named.get("qaccum", named.get("other"))
    assert len(adds) == (other is not None), f"{name}: residual add fused or not as referenced"
    if adds:
        residual = next(a for a in map(act_q, adds[0].args) if a is not None and a.dq is not view.anchor)  # fmt: skip
        scale = named.get("accum_scale", named.get("other_scale"))
        zp = named.get("accum_zero_point", named.get("other_zp"))
        if other.is_floating_point():  # a float output adds the residual dequantized before
            assert (scale, zp) == (1.0, 0), name
        else:
            assert (scale, zp) == (residual.scale, residual.zero_point), name
    unary = named.get("unary_attr", named.get("attr", named.get("post_op_name")))
    relu = any(p.target in (torch.ops.aten.relu.default, torch.ops.aten.relu_.default) for p in view.post_ops)  # fmt: skip
    assert (unary == "relu") == relu, f"{name}: post-op {unary}"
    if view.output is None:
        assert named["output_dtype"] in (None, torch.float32), name
    else:
        out = (named["output_scale"], named["output_zero_point"], named["output_dtype"])
        assert out == (view.output.scale, view.output.zero_point, view.output.dtype), name


def _exact(named: dict[str, Any], ref: GraphModule, view: QuantizedOp) -> torch.Tensor:
    """float64 value of the reference's math on the kernel's int8 inputs, before rounding."""
    assert view.weight is not None
    w_int, w_scale, w_zp = view.weight.tensors(ref)
    w = (w_int.double() - w_zp.view(-1, *[1] * (w_int.dim() - 1))) * w_scale.view(-1, *[1] * (w_int.dim() - 1))  # fmt: skip
    bias = constant_value(ref, view.bias).detach().double() if view.bias is not None else None
    x = (named["qx"].double() - named["x_zero_point"]) * named["x_scale"]
    if "stride" in named:
        y = F.conv2d(x, w, bias, named["stride"], named["padding"], named["dilation"], named["groups"])  # fmt: skip
    else:
        y = F.linear(x, w, bias)
    other = named.get("qaccum", named.get("other"))
    if other is not None:  # fused residual add: the dequantized int8 residual
        scale = named.get("accum_scale", named.get("other_scale"))
        zp = named.get("accum_zero_point", named.get("other_zp"))
        y = y + (other.double() - zp) * scale
    unary = named.get("unary_attr", named.get("attr", named.get("post_op_name")))
    return y.relu() if unary == "relu" else y


@pytest.fixture(scope="module")
def residual() -> tuple[ResidualNet, GraphModule, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    model = ResidualNet().eval()
    example = (torch.randn(4, 3, 8, 8),)
    return model, quantize(model, example, reduce_range=False), example


def test_every_kernel_is_the_exact_math_rounded_once(
    residual: tuple[ResidualNet, GraphModule, tuple[torch.Tensor, ...]],
) -> None:
    model, _, example = residual
    # Exact int32 accumulation needs VNNI for full-range uint8; quantize() reduces the range
    # where the CPU lacks it, so the kernels are exact either way.
    ref = quantize(model, example)
    low = lower_pt2e_quantized_to_x86(ref, example, compile=False, payoff=False)
    recorder = _KernelCalls(low)
    with torch.no_grad():
        recorder.run(*example)
    ops = _reference_ops(ref)
    kinds = sorted({str(n.target) for n, _, _ in recorder.calls})
    assert kinds == [
        "onednn.qconv2d_pointwise.binary",
        "onednn.qconv_pointwise.default",
        "onednn.qlinear_pointwise.default",
    ]
    assert len(recorder.calls) == 1 + 2 * 3 + 1  # stem, 3 blocks x 2 convs, fc
    for node, named, out in recorder.calls:
        view = ops[_scale_name(node)]
        _check_arguments(named, view)
        y = _exact(named, ref, view)
        if named["output_dtype"] == torch.uint8:
            # Within half a step of the exact value (plus float32 noise): rounded once.
            v = (y / named["output_scale"] + named["output_zero_point"]).clamp(0, 255)
            err = max_error_in_steps(out, v, 1.0)
            assert err <= IN_RANGE_ROUNDING_STEPS, f"{node.name}: {err:.4f} steps from exact"
        else:
            # Float output: within one unit of the int32 accumulator (x_scale * w_scale).
            unit = named["x_scale"] * named["w_scale"].double()
            unit = unit.view(-1, *[1] * (y.dim() - 2)) if y.dim() > 2 else unit
            err = max_error_in_steps(out, y, unit)
            assert err <= KERNEL_VS_FLOAT_REFERENCE_STEPS, f"{node.name}: {err:.4f} units off"


def _scale_name(kernel: Node) -> str:
    normalized = normalize_function(
        kernel.target, kernel.args, kernel.kwargs, normalize_to_only_use_kwargs=True
    )
    assert normalized is not None
    return str(normalized.kwargs["w_scale"].target)


def test_both_tiers_keep_the_reference_accuracy(
    residual: tuple[ResidualNet, GraphModule, tuple[torch.Tensor, ...]],
) -> None:
    model, ref, example = residual
    low = lower_pt2e_quantized_to_x86(ref, example, payoff=False)  # default config: full range
    g = torch.Generator().manual_seed(1)
    batches = [example[0]] + [torch.randn(example[0].shape, generator=g) for _ in range(3)]
    with torch.no_grad():
        fp = torch.cat([model(x) for x in batches])
        reference = torch.cat([ref(x) for x in batches])
        eager = torch.cat([low.forward(x) for x in batches])  # the graph: the first-call tier
        low(batches[0])  # first call (eager), then the compiled tier
        compiled = torch.cat([low(x) for x in batches])
    assert low.compiled
    floor = sqnr_db(reference, fp) - ISA_ADAPTED_MAX_SQNR_LOSS_DB
    assert sqnr_db(eager, fp) >= floor, (sqnr_db(eager, fp), floor)
    assert sqnr_db(compiled, fp) >= floor, (sqnr_db(compiled, fp), floor)
