"""XNNPACKQuantizer.transform_for_annotation: scalar operands of add/mul become quantized
0-d constants (``x + 1.0``, ``x * 0.5``), only where the op is quantized statically."""

from __future__ import annotations

import expecttest
import torch
from helpers import count_qdq, describe, export
from torch import nn

from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizers import XNNPACKQuantizer, coverage, get_symmetric_quantization_config
from pt2q.tolerances import QDQ_VS_HAND_REFERENCE_STEPS, assert_within_steps

qd = torch.ops.quantized_decomposed


class LinearAddMulScalars(nn.Module):
    """(linear(x) + 1.0) * 0.5 + 2 (an int scalar too)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.fc(x) + 1.0) * 0.5 + 2


def xnn() -> XNNPACKQuantizer:
    return XNNPACKQuantizer().set_global(get_symmetric_quantization_config())


def _fq(t: torch.Tensor, scale: float, zp: int) -> torch.Tensor:
    """int8 quantize -> dequantize by hand."""
    return (torch.clamp(torch.round(t / scale) + zp, -128, 127) - zp) * scale


class TestScalarOperands(expecttest.TestCase):
    def test_annotations(self) -> None:
        torch.manual_seed(0)
        q = xnn()
        gm = q.transform_for_annotation(export(LinearAddMulScalars(), torch.randn(4, 8)))
        q.annotate(gm)
        self.assertExpectedInline(
            describe(gm),
            """\
linear: in(x=i8, fc_weight=i8) out=i8
add: in(linear=i8, _tensor_constant_0=i8) out=i8
mul: in(add=i8, _tensor_constant_1=i8) out=i8
add_1: in(mul=i8, _tensor_constant_2=i8) out=i8""",
        )
        consts = [getattr(gm, f"_tensor_constant_{i}") for i in range(3)]
        assert [(c.item(), c.dtype, c.dim()) for c in consts] == [
            (1.0, torch.float32, 0),
            (0.5, torch.float32, 0),
            (2.0, torch.float32, 0),
        ]
        assert coverage(gm).float_reasons == {}

    def test_qdq_counts_and_numerics(self) -> None:
        torch.manual_seed(0)
        model = LinearAddMulScalars().eval()
        x = torch.randn(16, 8)
        prepared = prepare_pt2e(export(model, x), xnn())
        prepared(x)
        converted = convert_pt2e(prepared)
        # q: x, linear, add, mul, add_1; dq: those 5 + the weight + 3 folded constants
        assert count_qdq(converted) == {
            "dequantize_per_tensor.default": 9,
            "quantize_per_tensor.default": 5,
        }
        qparams = [
            n.args[1:3] for n in converted.graph.nodes if n.target == qd.quantize_per_tensor.default
        ]
        const_dq = [
            n
            for n in converted.graph.nodes
            if n.target == qd.dequantize_per_tensor.default
            and n.args[0].op == "get_attr"
            and getattr(converted, n.args[0].target).dim() == 0
        ]
        consts = [
            (getattr(converted, n.args[0].target).item() - n.args[2]) * n.args[1] for n in const_dq
        ]
        # Each constant is its own only value: it dequantizes to the scalar within one step.
        for value, expected, n in zip(consts, (1.0, 0.5, 2.0), const_dq, strict=True):
            assert abs(value - expected) <= n.args[1], (n.name, value, expected)
        (sx, zx), (sl, zl), (sa, za), (sm, zm), (so, zo) = qparams
        (dq_w,) = [
            n
            for n in converted.graph.nodes
            if n.target == qd.dequantize_per_tensor.default
            and n.args[0].op == "get_attr"
            and n not in const_dq
        ]
        w = (getattr(converted, dq_w.args[0].target).float() - dq_w.args[2]) * dq_w.args[1]
        with torch.no_grad():
            y = _fq(nn.functional.linear(_fq(x, sx, zx), w, model.fc.bias), sl, zl)
            y = _fq(_fq(y + consts[0], sa, za) * consts[1], sm, zm)
            expected = _fq(y + consts[2], so, zo)
            actual = converted(x)
        assert_within_steps(actual, expected, so, QDQ_VS_HAND_REFERENCE_STEPS, "scalar add/mul")
        # and close to float (a loose sanity bound: the scalars are exact)
        cos = nn.functional.cosine_similarity(actual.flatten(), model(x).detach().flatten(), dim=0)
        assert cos > 0.999, cos

    def test_float_ops_keep_their_scalars(self) -> None:
        q = xnn().set_operator_type(torch.ops.aten.mul.Tensor, None)
        gm = q.transform_for_annotation(export(LinearAddMulScalars(), torch.randn(4, 8)))
        muls = [n for n in gm.graph.nodes if n.target == torch.ops.aten.mul.Tensor]
        assert [m.args[1] for m in muls] == [0.5]  # not quantized: scalar left as is
        adds = [n for n in gm.graph.nodes if n.target == torch.ops.aten.add.Tensor]
        assert all(isinstance(a.args[1], torch.fx.Node) for a in adds)

    def test_integer_tensor_scalars_untouched(self) -> None:
        class IntAdd(nn.Module):
            def forward(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
                return x * (idx + 1)

        gm = export(IntAdd(), torch.randn(4), torch.arange(4))
        xnn().transform_for_annotation(gm)
        (add,) = [n for n in gm.graph.nodes if n.target == torch.ops.aten.add.Tensor]
        assert add.args[1] == 1
        assert not [n for n in gm.graph.nodes if n.op == "get_attr"]
