"""A Quantizer for a made-up accelerator, written the way hardware vendors write theirs:
only the torchao-named helpers (``annotate_input_qspec_map``, ``annotate_output_qspec``,
``get_module_name_filter``, ``OperatorConfig``, ``get_*_qspec``, ``SharedQuantizationSpec``,
``DerivedQuantizationSpec``), imported from pt2q instead of torchao.

    .venv/bin/python examples/custom_accelerator_quantizer.py

The "Acme NPU" runs int8 conv2d / linear (+ fused relu) with uint8 activations (per tensor),
int8 symmetric per-channel weights and int32 bias at ``act_scale * weight_scale``; max-pool and
cat run on int8 in place, so their outputs keep their input's qparams. Modules the user names
stay float. The script prepares, calibrates and converts a small CNN, then checks the result:
q/dq counts, float modules, output error against float.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.fx import GraphModule, Node

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.observer import HistogramObserver, PerChannelMinMaxObserver
from pt2q.quantizer import (
    DerivedQuantizationSpec,
    OperatorConfig,
    QuantizationConfig,
    QuantizationSpec,
    Quantizer,
    SharedQuantizationSpec,
    annotate_input_qspec_map,
    annotate_output_qspec,
    get_bias_qspec,
    get_input_act_qspec,
    get_module_name_filter,
    get_output_act_qspec,
    get_weight_qspec,
)

aten = torch.ops.aten
qd = torch.ops.quantized_decomposed

# --- the accelerator's quantization recipe -----------------------------------------------------

ACME_CONFIG = QuantizationConfig(
    input_activation=QuantizationSpec(
        dtype=torch.uint8, quant_min=0, quant_max=255, qscheme=torch.per_tensor_affine,
        observer_or_fake_quant_ctr=HistogramObserver,
    ),
    output_activation=QuantizationSpec(
        dtype=torch.uint8, quant_min=0, quant_max=255, qscheme=torch.per_tensor_affine,
        observer_or_fake_quant_ctr=HistogramObserver,
    ),
    weight=QuantizationSpec(
        dtype=torch.int8, quant_min=-127, quant_max=127, qscheme=torch.per_channel_symmetric,
        ch_axis=0, observer_or_fake_quant_ctr=PerChannelMinMaxObserver,
    ),
    bias=None,  # int32, derived from the input and weight scales below
)  # fmt: skip

ANCHORS = {aten.conv2d.default: "conv2d", aten.linear.default: "linear"}
RELUS = (aten.relu.default, aten.relu_.default)
IN_PLACE_INT8 = (aten.max_pool2d.default, aten.cat.default)


def _bias_qparams(observers: list[nn.Module]) -> tuple[torch.Tensor, torch.Tensor]:
    act_scale, _ = observers[0].calculate_qparams()  # type: ignore[operator]
    weight_scale, _ = observers[1].calculate_qparams()  # type: ignore[operator]
    scale = (act_scale * weight_scale).float()  # (C_out,)
    return scale, torch.zeros_like(scale, dtype=torch.int32)


def _bias_spec(x: Node, weight: Node, op: Node) -> DerivedQuantizationSpec:
    return DerivedQuantizationSpec(
        derived_from=[(x, op), (weight, op)],
        derive_qparams_fn=_bias_qparams,
        dtype=torch.int32,
        quant_min=-(2**31),
        quant_max=2**31 - 1,
        qscheme=torch.per_channel_symmetric,
        ch_axis=0,
    )


class AcmeNPUQuantizer(Quantizer):
    """Quantizes conv2d/linear [+ relu], max_pool2d and cat for the Acme NPU."""

    def __init__(self, config: QuantizationConfig = ACME_CONFIG) -> None:
        super().__init__()
        self.config = config
        self.float_module_names: list[str] = []

    def set_module_name_float(self, module_name: str) -> AcmeNPUQuantizer:
        """Leave every op inside submodule ``module_name`` in float."""
        self.float_module_names.append(module_name)
        return self

    @classmethod
    def get_supported_operators(cls) -> list[OperatorConfig]:
        patterns = [[nn.Conv2d], [nn.Conv2d, nn.ReLU], [nn.Linear], [nn.Linear, nn.ReLU],
                    [nn.MaxPool2d], [torch.cat]]  # fmt: skip
        return [OperatorConfig(ACME_CONFIG, patterns)]

    def _is_float(self, node: Node) -> bool:
        return any(get_module_name_filter(name)(node) for name in self.float_module_names)

    def _annotate_weighted(self, op: Node) -> None:
        x, weight = op.args[0], op.args[1]
        assert isinstance(x, Node) and isinstance(weight, Node)
        annotate_input_qspec_map(op, x, get_input_act_qspec(self.config))
        annotate_input_qspec_map(op, weight, get_weight_qspec(self.config))
        bias = op.args[2] if len(op.args) > 2 else None
        if isinstance(bias, Node):
            bias_qspec = get_bias_qspec(self.config) or _bias_spec(x, weight, op)
            annotate_input_qspec_map(op, bias, bias_qspec)
        users = list(op.users)
        relu = users[0] if len(users) == 1 and users[0].target in RELUS else None
        if relu is not None and not self._is_float(relu):  # fused: quantize after the relu
            annotate_output_qspec(relu, get_output_act_qspec(self.config))
            relu.meta["quantization_annotation"]._annotated = True
        else:
            annotate_output_qspec(op, get_output_act_qspec(self.config))
        op.meta["quantization_annotation"]._annotated = True

    def _annotate_in_place(self, op: Node) -> None:
        inputs = op.args[0] if op.target == aten.cat.default else [op.args[0]]
        first = inputs[0]
        assert isinstance(first, Node)
        annotate_input_qspec_map(op, first, get_input_act_qspec(self.config))
        for other in inputs[1:]:  # cat: every input like the first one
            annotate_input_qspec_map(op, other, SharedQuantizationSpec((first, op)))
        annotate_output_qspec(op, SharedQuantizationSpec((first, op)))
        op.meta["quantization_annotation"]._annotated = True

    def annotate(self, model: GraphModule) -> GraphModule:
        for node in model.graph.nodes:
            if node.op != "call_function" or self._is_float(node):
                continue
            if node.target in ANCHORS:
                self._annotate_weighted(node)
            elif node.target in IN_PLACE_INT8:
                self._annotate_in_place(node)
        return model

    def validate(self, model: GraphModule) -> None:
        for node in model.graph.nodes:
            if node.target == aten.conv2d.default and node.args[1].meta["val"].dim() != 4:
                raise ValueError(f"Acme NPU: conv2d '{node.name}' needs a 4-D weight")


# --- an end-to-end run ---------------------------------------------------------------------------


class TwoBranchCNN(nn.Module):
    """(N, 3, 16, 16) -> 10 logits; two conv branches concatenated, then a float-kept head."""

    def __init__(self) -> None:
        super().__init__()
        self.left = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.right = nn.Sequential(nn.Conv2d(3, 8, 5, padding=2), nn.ReLU())
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 8 * 8, 32)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(torch.cat([self.left(x), self.right(x)], dim=1))  # (N, 16, 8, 8)
        return self.head(torch.relu(self.fc(torch.flatten(y, 1))))


def _count(gm: GraphModule, op: object) -> int:
    return sum(1 for n in gm.graph.nodes if n.target == op)


def main() -> None:
    torch.manual_seed(0)
    model = TwoBranchCNN().eval()
    calibration = [torch.randn(8, 3, 16, 16) for _ in range(4)]
    exported = torch.export.export(model, (calibration[0],)).module()

    quantizer = AcmeNPUQuantizer().set_module_name_float("head")
    prepared = prepare_pt2e(exported, quantizer)
    with torch.no_grad():
        for batch in calibration:
            prepared(batch)
    converted = convert_pt2e(prepared)

    x = torch.randn(16, 3, 16, 16)
    with torch.no_grad():
        ref, out = model(x), converted(x)
    sqnr = float(10 * torch.log10(ref.pow(2).mean() / (ref - out).pow(2).mean()))
    q = _count(converted, qd.quantize_per_tensor.default)
    dq = _count(converted, qd.dequantize_per_tensor.default)
    dq_pc = _count(converted, qd.dequantize_per_channel.default)  # int8 weights, int32 biases
    scales = {
        n.args[0].name: n.args[1]
        for n in converted.graph.nodes
        if n.target == qd.quantize_per_tensor.default
    }
    float_linears = [
        n.name
        for n in converted.graph.nodes
        if n.target == aten.linear.default
        and not (
            isinstance(n.args[1], Node) and n.args[1].target == qd.dequantize_per_channel.default
        )
    ]
    print(f"quantize_per_tensor: {q}, dequantize_per_tensor: {dq}, per-channel dequantize: {dq_pc}")
    shared = scales["relu"] == scales["relu_1"] == scales["cat"] == scales["max_pool2d"]
    print(f"cat and max_pool2d keep their inputs' scale: {shared}")
    print(f"float linears (module 'head'): {float_linears}")
    print(f"output SQNR vs float: {sqnr:.1f} dB")
    # quantized: input, both conv+relu outputs, cat, max_pool2d, fc input (after the float
    # flatten), fc+relu output; 3 weights + 3 biases per channel
    assert (q, dq, dq_pc) == (7, 8, 6), (q, dq, dq_pc)
    assert shared, scales
    assert float_linears == ["linear_1"], float_linears
    assert sqnr > 25.0, sqnr
    print("check: OK")


if __name__ == "__main__":
    main()
