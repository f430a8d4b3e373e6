"""A tiny hand-written Quantizer for the debugger tests (not a shipped backend).

conv2d / linear: input activation per-tensor uint8 (affine, MinMax), weight per-channel int8
(symmetric, axis 0), bias float; the output is quantized after a single following relu when
there is one, else at the op. ``set_module_name(name, None)`` leaves every node under module
path ``name`` unannotated (float), as the shipped quantizers do.
"""

from __future__ import annotations

import torch
from torch.fx import GraphModule, Node

from pt2q.observer import MinMaxObserver, PerChannelMinMaxObserver
from pt2q.quantizer import QuantizationAnnotation, QuantizationSpec, Quantizer

__all__ = ["ToyQuantizer", "ACT", "WEIGHT"]

ACT = QuantizationSpec(
    dtype=torch.uint8,
    quant_min=0,
    quant_max=255,
    qscheme=torch.per_tensor_affine,
    observer_or_fake_quant_ctr=MinMaxObserver,
)
WEIGHT = QuantizationSpec(
    dtype=torch.int8,
    quant_min=-127,
    quant_max=127,
    qscheme=torch.per_channel_symmetric,
    ch_axis=0,
    observer_or_fake_quant_ctr=PerChannelMinMaxObserver,
)
_OPS = (torch.ops.aten.conv2d.default, torch.ops.aten.linear.default)
_RELU = (torch.ops.aten.relu.default, torch.ops.aten.relu_.default)


def _path(node: Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return str(list(stack.values())[-1][0]) if stack else ""


class ToyQuantizer(Quantizer):
    """conv2d/linear (+relu) static quantizer with per-module float fallback."""

    def __init__(self) -> None:
        self.skip: set[str] = set()

    def set_module_name(self, name: str, config: object | None) -> ToyQuantizer:
        """``config=None`` leaves module ``name`` (and its children) in float."""
        if config is not None:
            raise ValueError(f"ToyQuantizer.set_module_name({name!r}): only None is supported")
        self.skip.add(name)
        return self

    def _skipped(self, node: Node) -> bool:
        path = _path(node)
        return any(path == s or path.startswith(s + ".") for s in self.skip)

    def annotate(self, model: GraphModule) -> GraphModule:
        for node in model.graph.nodes:
            if node.op != "call_function" or node.target not in _OPS or self._skipped(node):
                continue
            x, w = node.args[0], node.args[1]
            node.meta["quantization_annotation"] = QuantizationAnnotation(
                input_qspec_map={x: ACT, w: WEIGHT}, _annotated=True
            )
            users = list(node.users)
            out = node
            if len(users) == 1 and users[0].target in _RELU:
                out = users[0]
            out.meta["quantization_annotation"] = (
                QuantizationAnnotation(
                    input_qspec_map=node.meta["quantization_annotation"].input_qspec_map,
                    output_qspec=ACT,
                    _annotated=True,
                )
                if out is node
                else QuantizationAnnotation(output_qspec=ACT, _annotated=True)
            )
        return model

    def validate(self, model: GraphModule) -> None:
        return None
