"""A hand-written Quantizer for the core tests, exercising every spec kind.

conv2d / linear: uint8 affine activations (MinMax), int8 per-channel symmetric weights, int32
bias derived as act_scale * weight_scale per channel; output quantized. max_pool2d / flatten:
input quantized, output shares the input edge (SharedQuantizationSpec). sigmoid: fixed output
qparams (1/256, 0). Options turn on dynamic activations or leave ops unannotated.
"""

from __future__ import annotations

import torch
from torch.fx import GraphModule, Node

from pt2q.observer import MinMaxObserver, PerChannelMinMaxObserver, PlaceholderObserver
from pt2q.quantizer import (
    DerivedQuantizationSpec,
    FixedQParamsQuantizationSpec,
    QuantizationAnnotation,
    QuantizationSpec,
    Quantizer,
    SharedQuantizationSpec,
)

aten = torch.ops.aten
ACT = QuantizationSpec(torch.uint8, MinMaxObserver, 0, 255, torch.per_tensor_affine)
DYN_ACT = QuantizationSpec(
    torch.uint8, PlaceholderObserver, 0, 255, torch.per_tensor_affine, is_dynamic=True
)
WEIGHT = QuantizationSpec(
    torch.int8, PerChannelMinMaxObserver, -128, 127, torch.per_channel_symmetric, ch_axis=0
)
SIGMOID_OUT = FixedQParamsQuantizationSpec(torch.uint8, 1.0 / 256.0, 0, 0, 255)
_WEIGHTED = (aten.conv2d.default, aten.linear.default)
_SHARING = (aten.max_pool2d.default, aten.flatten.using_ints)


def derive_bias_qparams(obs: list[torch.nn.Module]) -> tuple[torch.Tensor, torch.Tensor]:
    """bias scale = activation scale * weight scale (per channel), zero point 0."""
    act_scale, _ = obs[0].calculate_qparams()  # type: ignore[operator]
    w_scale, _ = obs[1].calculate_qparams()  # type: ignore[operator]
    scale = (act_scale * w_scale).float()
    return scale, torch.zeros_like(scale, dtype=torch.int32)


def bias_spec(x: Node, w: Node, node: Node) -> DerivedQuantizationSpec:
    return DerivedQuantizationSpec(
        derived_from=[(x, node), (w, node)],
        derive_qparams_fn=derive_bias_qparams,
        dtype=torch.int32,
        quant_min=-(2**31),
        quant_max=2**31 - 1,
        qscheme=torch.per_channel_symmetric,
        ch_axis=0,
    )


class CoreQuantizer(Quantizer):
    def __init__(self, dynamic: bool = False, quantize_bias: bool = True) -> None:
        self.dynamic = dynamic
        self.quantize_bias = quantize_bias
        self.transform_calls = 0
        self.callback_keys: list[object] = []

    def transform_for_annotation(self, model: GraphModule) -> GraphModule:
        self.transform_calls += 1
        return model

    def annotate(self, model: GraphModule) -> GraphModule:
        act = DYN_ACT if self.dynamic else ACT
        for node in model.graph.nodes:
            if node.target in _WEIGHTED:
                x, w = node.args[0], node.args[1]
                qmap: dict[Node, object] = {x: act, w: WEIGHT}
                b = node.args[2] if len(node.args) > 2 else None
                if self.quantize_bias and isinstance(b, Node) and not self.dynamic:
                    qmap[b] = bias_spec(x, w, node)
                node.meta["quantization_annotation"] = QuantizationAnnotation(
                    input_qspec_map=qmap,  # type: ignore[arg-type]
                    output_qspec=None if self.dynamic else ACT,
                    _annotated=True,
                )
            elif node.target in _SHARING and not self.dynamic:
                x = node.args[0]
                node.meta["quantization_annotation"] = QuantizationAnnotation(
                    input_qspec_map={x: ACT},
                    output_qspec=SharedQuantizationSpec((x, node)),
                    _annotated=True,
                )
            elif node.target == aten.sigmoid.default and not self.dynamic:
                node.meta["quantization_annotation"] = QuantizationAnnotation(
                    input_qspec_map={node.args[0]: ACT},
                    output_qspec=SIGMOID_OUT,
                    _annotated=True,
                )
        return model

    def validate(self, model: GraphModule) -> None:
        return None

    def prepare_obs_or_fq_callback(self, model: GraphModule, mapping: dict) -> None:  # type: ignore[type-arg]
        self.callback_keys = list(mapping)
