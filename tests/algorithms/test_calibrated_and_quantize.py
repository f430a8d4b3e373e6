"""Adaptive rounding, bias correction and the quantize() entry point on small models."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from algorithm_models import ConvChain, conv_batches, exported
from torch import nn

from pt2q.algorithms import METHODS, adaround, bias_correction, quantize
from pt2q.algorithms.params import get_param
from pt2q.algorithms.weights import quantized_weights
from pt2q.convert.fold import ROUNDED_WEIGHT_KEY
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizers import XNNPACKQuantizer, get_symmetric_quantization_config

qd = torch.ops.quantized_decomposed


def _xnnpack(per_channel: bool = False) -> XNNPACKQuantizer:
    return XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=per_channel)
    )


class TwoLinears(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 64)
        self.fc2 = nn.Linear(64, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


def _linear_batches(n: int = 4) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(32, 64, generator=g) + 0.5 for _ in range(n)]


def _calibrated(model: nn.Module, batches: list[torch.Tensor]) -> torch.fx.GraphModule:
    prepared = prepare_pt2e(exported(model, batches[0]), _xnnpack())
    for b in batches:
        prepared(b)
    return prepared


def _folded_weight(converted: torch.fx.GraphModule, name: str) -> torch.Tensor:
    """The int8 constant convert folded for linear ``name``'s weight."""
    node = next(n for n in converted.graph.nodes if n.name == name)
    dq = node.args[1]
    return getattr(converted, dq.args[0].target)


def test_adaround_integers_are_folded_unchanged_and_lower_layer_error() -> None:
    torch.manual_seed(0)
    model = TwoLinears().eval()
    batches = _linear_batches()
    prepared = _calibrated(model, batches[:3])
    changed = adaround(prepared, batches[:3], seconds=600.0, iterations=80)  # deterministic
    assert changed  # at least one layer found a better rounding than nearest
    qw = {q.op.name: q for q in quantized_weights(prepared)}
    chosen = {name: qw[name].weight.meta[ROUNDED_WEIGHT_KEY].clone() for name in changed}
    nearest = {
        name: qw[name].integers(
            getattr(model, "fc1" if name == "linear" else "fc2").weight.detach()
        )
        for name in changed
    }
    converted = convert_pt2e(prepared)
    for name in changed:
        folded = _folded_weight(converted, name)
        assert folded.dtype == torch.int8 and torch.equal(folded, chosen[name])
        assert not torch.equal(folded.float(), nearest[name])  # not re-rounded to nearest
    # held-out layer error with the chosen integers <= with nearest rounding
    x = batches[3]
    with torch.no_grad():
        inputs = {"linear": x, "linear_1": torch.relu(model.fc1(x))}
    for name in changed:
        w = (model.fc1 if name == "linear" else model.fc2).weight.detach()
        q = qw[name]

        def err(ints: torch.Tensor, q=q, w=w, x=inputs[name]) -> float:
            return float((x @ (q.dequantize(ints.float()) - w).t()).pow(2).mean())

        assert err(chosen[name]) <= err(nearest[name]) * 1.05


def test_fold_honours_integers_written_by_an_algorithm() -> None:
    torch.manual_seed(0)
    model = TwoLinears().eval()
    prepared = _calibrated(model, _linear_batches()[:2])
    q = next(q for q in quantized_weights(prepared) if q.op.name == "linear")
    forced = torch.full_like(model.fc1.weight, 3, dtype=torch.int8)
    q.weight.meta[ROUNDED_WEIGHT_KEY] = forced
    converted = convert_pt2e(prepared)
    assert torch.equal(_folded_weight(converted, "linear"), forced)


def test_bias_correction_removes_the_mean_output_shift() -> None:
    torch.manual_seed(0)
    model = TwoLinears().eval()
    batches = _linear_batches()
    prepared = _calibrated(model, batches[:3])
    plain = convert_pt2e(copy.deepcopy(prepared))
    assert bias_correction(prepared, batches[:3]) == ["linear", "linear_1"]
    corrected = convert_pt2e(prepared)
    with torch.no_grad():
        ref = model(batches[3])
        shift_plain = (plain(batches[3]) - ref).mean(0).abs().mean()
        shift_corrected = (corrected(batches[3]) - ref).mean(0).abs().mean()
    assert shift_corrected < shift_plain
    assert torch.equal(model.fc1.bias, model.fc1.bias.clone())  # new tensors, not written into


class ConvBnPair(nn.Module):
    """Two bias-free 1x1 convs with BN: folding gives them a ``bias`` kwarg (their other
    arguments are defaults), not a positional bias."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(8, 16, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 8, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        with torch.no_grad():
            for bn in (self.bn1, self.bn2):
                bn.running_mean.uniform_(-1.0, 1.0)
                bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))


def test_bias_correction_reaches_a_bn_folded_bias_kwarg() -> None:
    torch.manual_seed(0)
    model = ConvBnPair().eval()
    g = torch.Generator().manual_seed(0)
    batches = [torch.rand(4, 8, 6, 6, generator=g) + 0.5 for _ in range(4)]  # mean > 0: a shift
    gm = exported(model, batches[0])
    convs = [n for n in gm.graph.nodes if n.target == torch.ops.aten.conv2d.default]
    assert [len(n.args) for n in convs] == [2, 2]  # (x, w): no positional bias to fold into
    _, report = quantize(gm, _xnnpack(), batches, ("bias_correction",))
    (step,) = report.steps
    assert step.detail == "2 weighted ops changed"  # both folded biases found (before: none)
    assert report.sqnr_db > report.plain_sqnr_db + 1.0  # measured 41.8 -> 43.7 dB


class StridedConvs(nn.Module):
    """A strided, padded, dilated conv, a depthwise conv and a linear: the geometries whose
    bias shift bias_correction takes from mean im2col patches instead of running the op."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1, dilation=2)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc = nn.Linear(8 * 4 * 4, 4)

    def parts(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The input of conv, dw, fc."""
        h = torch.relu(self.conv(x))
        return [x, h, torch.relu(self.dw(h)).flatten(1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.parts(x)[2])


def test_bias_correction_shift_equals_the_op_on_the_weight_error() -> None:
    torch.manual_seed(0)
    model = StridedConvs().eval()
    g = torch.Generator().manual_seed(0)
    batches = [torch.rand(2, 3, 9, 9, generator=g) for _ in range(3)]
    prepared = _calibrated(model, batches)
    qws = {q.op.name: q for q in quantized_weights(prepared)}
    ops = {"conv2d": F.conv2d, "conv2d_1": F.conv2d, "linear": F.linear}
    mods = {"conv2d": model.conv, "conv2d_1": model.dw, "linear": model.fc}
    kwargs = {
        "conv2d": {"stride": 2, "padding": 1, "dilation": 2},
        "conv2d_1": {"padding": 1, "groups": 8},
        "linear": {},
    }
    assert bias_correction(prepared, batches) == list(ops)
    with torch.no_grad():
        for i, name in enumerate(ops):
            w, b = mods[name].weight, mods[name].bias
            delta = qws[name].dequantize(qws[name].integers(w)) - w
            per_batch = []
            for x in batches:
                y = ops[name](model.parts(x)[i], delta, None, **kwargs[name])
                per_batch.append(y.mean((0, 2, 3)) if y.dim() == 4 else y.mean(0))
            expected = b - torch.stack(per_batch).mean(0)
            bias_node = qws[name].bias
            assert bias_node is not None
            got = get_param(prepared, bias_node)
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
            assert not torch.equal(got, b)  # a real shift was removed


def test_quantize_auto_reports_every_method_and_never_loses() -> None:
    torch.manual_seed(0)
    model = ConvChain().eval()
    batches = conv_batches(4)
    gm = exported(model, batches[0])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    converted, report = quantize(gm, _xnnpack(), batches, "auto", adaround_seconds=0.5)
    assert [s.method for s in report.steps] == list(METHODS)
    assert report.sqnr_db >= report.plain_sqnr_db
    equalize_step = next(s for s in report.steps if s.method == "equalize")
    assert equalize_step.detail == "3 layer pairs equalized"
    kept = [s for s in report.steps if s.kept]
    if kept:
        assert report.sqnr_db == pytest.approx(max(s.sqnr_db for s in kept))
    assert "output SQNR on 1 held-out batch(es)" in str(report)
    assert any(n.target == qd.dequantize_per_tensor.default for n in converted.graph.nodes)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_quantize_explicit_methods_and_errors() -> None:
    torch.manual_seed(0)
    model = TwoLinears().eval()
    batches = _linear_batches()
    gm = exported(model, batches[0])
    _, report = quantize(gm, _xnnpack(), batches, ("bias_correction",))
    assert [(s.method, s.kept) for s in report.steps] == [("bias_correction", True)]
    seen: list[int] = []

    def metric(ref: list[object], outs: list[object], held: list[object]) -> float:
        seen.append(len(held))
        return 1.0

    _, judged = quantize(gm, _xnnpack(), batches, ("bias_correction",), metric=metric)
    assert judged.plain_sqnr_db == judged.sqnr_db == 1.0 and seen == [1, 1]
    with pytest.raises(ValueError, match=r"unknown method\(s\) \['smoothquant'\]"):
        quantize(gm, _xnnpack(), batches, ("smoothquant",))
    with pytest.raises(ValueError, match="calibration_batches is empty"):
        quantize(gm, _xnnpack(), [], "auto")
