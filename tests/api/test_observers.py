"""Noop / Recording / ReuseInput observers, the default_* observer constructors (settings as
torchao's) and DerivedObserverOrFakeQuantize, each in the prepare / convert flow."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.fx import GraphModule
from torchao_peer import register, result

import pt2q.observer as obs
from pt2q import DerivedObserverOrFakeQuantize, convert_pt2e, prepare_pt2e
from pt2q.observer import (
    MinMaxObserver,
    NoopObserver,
    RecordingObserver,
    ReuseInputObserver,
    UniformQuantizationObserverBase,
)
from pt2q.quantizer import (
    QuantizationSpec,
    Quantizer,
    annotate_input_qspec_map,
    annotate_output_qspec,
)

aten = torch.ops.aten
qd = torch.ops.quantized_decomposed
ACT = QuantizationSpec(torch.uint8, MinMaxObserver, 0, 255, torch.per_tensor_affine)


class LinearViewLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x).view(-1, 4))


class SpecQuantizer(Quantizer):
    """``spec`` on linear a's input; ``view_out`` on the view's output; linear a's output
    observed when ``observe_a``."""

    def __init__(
        self, spec: QuantizationSpec, view_out: QuantizationSpec | None = None, observe_a=True
    ) -> None:
        self.spec, self.view_out, self.observe_a = spec, view_out, observe_a

    def annotate(self, model: GraphModule) -> GraphModule:
        for node in model.graph.nodes:
            if node.name == "linear":
                annotate_input_qspec_map(node, node.args[0], self.spec)
                if self.observe_a:
                    annotate_output_qspec(node, ACT)
            if node.target == aten.view.default and self.view_out is not None:
                annotate_output_qspec(node, self.view_out)
        return model

    def validate(self, model: GraphModule) -> None:
        pass


def _prepared(quantizer: Quantizer) -> tuple[nn.Module, GraphModule]:
    torch.manual_seed(0)
    model = LinearViewLinear().eval()
    gm = torch.export.export(model, (torch.randn(2, 8),)).module()
    return model, prepare_pt2e(gm, quantizer)


def test_recording_observer_keeps_every_tensor() -> None:
    spec = QuantizationSpec(torch.uint8, RecordingObserver)
    _, prepared = _prepared(SpecQuantizer(spec, observe_a=False))
    batches = [torch.randn(2, 8) for _ in range(3)]
    for x in batches:
        prepared(x)
    [recorder] = [m for m in prepared.modules() if isinstance(m, RecordingObserver)]
    recorded = recorder.get_tensor_value()
    assert len(recorded) == 3
    assert all(torch.equal(r, x) for r, x in zip(recorded, batches, strict=True))
    batches[0].add_(1.0)  # copies, not views of the caller's tensors
    assert not torch.equal(recorded[0], batches[0])
    with pytest.raises(RuntimeError, match="should not be called for RecordingObserver"):
        convert_pt2e(prepared)


def test_noop_observer_converts_to_a_float16_round_trip() -> None:
    spec = QuantizationSpec(torch.float16, NoopObserver)
    model, prepared = _prepared(SpecQuantizer(spec, observe_a=False))
    x = torch.randn(2, 8)
    prepared(x)
    converted = convert_pt2e(prepared)
    casts = [
        n.args[1] for n in converted.graph.nodes if n.target == qd.convert_element_type.no_fuse
    ]
    assert casts == [torch.float16, torch.float32]
    assert torch.equal(converted(x), model.b(model.a(x.half().float()).view(-1, 4)))


def _q_params(gm: GraphModule) -> dict[str, tuple[float, int]]:
    return {
        n.args[0].name: (n.args[1], n.args[2])
        for n in gm.graph.nodes
        if n.target == qd.quantize_per_tensor.default
    }


def test_reuse_input_observer_shares_the_input_qparams() -> None:
    reuse = QuantizationSpec(torch.uint8, ReuseInputObserver.with_args())
    _, prepared = _prepared(SpecQuantizer(ACT, view_out=reuse))
    prepared(torch.randn(2, 8) * 3)
    qparams = _q_params(convert_pt2e(prepared))
    assert set(qparams) == {"x", "linear", "view"}
    assert qparams["view"] == qparams["linear"]  # one observer serves both


def test_reuse_input_observer_leaves_float_when_the_input_is_float() -> None:
    reuse = QuantizationSpec(torch.uint8, ReuseInputObserver)
    _, prepared = _prepared(SpecQuantizer(ACT, view_out=reuse, observe_a=False))
    prepared(torch.randn(2, 8))
    assert set(_q_params(convert_pt2e(prepared))) == {"x"}


def test_derived_observer_torchao_signature() -> None:
    a, b = MinMaxObserver(), MinMaxObserver()
    a(torch.tensor([0.0, 2.55]))
    b(torch.tensor([0.0, 5.1]))

    def product(observers: list[nn.Module]) -> tuple[torch.Tensor, torch.Tensor]:
        return observers[0].calculate_qparams()[0] * observers[1].calculate_qparams()[0], (
            torch.tensor([0])
        )

    derived = DerivedObserverOrFakeQuantize(torch.int32, [a, b], product)
    scale, _ = derived.calculate_qparams()
    assert float(scale) == pytest.approx(0.01 * 0.02)
    with pytest.raises(ValueError, match="pass ch_axis"):
        DerivedObserverOrFakeQuantize(
            torch.int32, [a], product, qscheme=torch.per_channel_symmetric
        )
    assert UniformQuantizationObserverBase is obs.UniformObserverBase
    assert issubclass(MinMaxObserver, UniformQuantizationObserverBase)


DEFAULTS = [
    "default_observer",
    "default_weight_observer",
    "weight_observer_range_neg_127_to_127",
    "default_histogram_observer",
    "default_per_channel_weight_observer",
    "per_channel_weight_observer_range_neg_127_to_127",
    "default_dynamic_quant_observer",
    "default_fixed_qparams_range_neg1to1_observer",
    "default_fixed_qparams_range_0to1_observer",
    "default_symmetric_fixed_qparams_observer",
    "default_affine_fixed_qparams_observer",
    "default_placeholder_observer",
    "default_debug_observer",
    "default_reuse_input_observer",
]
_ATTRS = ("dtype", "qscheme", "quant_min", "quant_max", "is_dynamic", "eps", "ch_axis", "scale",
          "zero_point")  # fmt: skip

_SNIPPET = """
import torchao.quantization.pt2e.observer as ao
def plain(v):
    if isinstance(v, torch.Tensor):
        return [float(e) for e in v.reshape(-1)]
    if isinstance(v, float):
        return [v]
    return str(v).replace("torch.quint8", "torch.uint8").replace("torch.qint8", "torch.int8")
result = {}
for name in NAMES:
    o = getattr(ao, name)()
    result[name] = [type(o).__name__, {a: plain(getattr(o, a)) for a in ATTRS if hasattr(o, a)}]
"""


register("observer_defaults", f"NAMES = {DEFAULTS!r}\nATTRS = {_ATTRS!r}\n{_SNIPPET}")


@pytest.fixture(scope="module")
def torchao_defaults() -> dict:
    return result("observer_defaults")


def _plain(v: object) -> object:
    # tensors and floats as lists of floats (torchao keeps eps and fixed qparams as tensors)
    if isinstance(v, torch.Tensor):
        return [float(e) for e in v.reshape(-1)]
    return [v] if isinstance(v, float) else str(v)


@pytest.mark.parametrize("name", DEFAULTS)
def test_default_observers_have_torchao_settings(name: str, torchao_defaults: dict) -> None:
    ours = getattr(obs, name)()
    kind, attrs = torchao_defaults[name]
    assert type(ours).__name__ == kind
    for attr, value in attrs.items():
        if attr == "ch_axis" and value == "-1":  # torchao's "no axis" on per-tensor observers
            continue
        assert _plain(getattr(ours, attr)) == value, attr
