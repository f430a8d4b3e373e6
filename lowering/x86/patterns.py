"""What the x86 lowering hands to Inductor's oneDNN int8 passes, as tables.

Inductor (``torch/_inductor/fx_passes/quantization.py``) matches, with freezing on,

    dequantize_per_tensor(x_u8) --+
                                  +--> conv / linear --> [unary] --> [binary] --> [quantize]
    dequantize_per_channel(w_s8) -+

and replaces it with ``onednn.qconv_pointwise`` / ``qlinear_pointwise`` (or their ``.binary``
forms) with the bracketed ops fused. These tables say which reference-program ops are
candidates, which post-ops Inductor fuses, and which Inductor counters count the result.
"""

from __future__ import annotations

from typing import cast

import torch
from torch.fx import Node

__all__ = [
    "COMPUTE_OPS",
    "UNARY_POST_OPS",
    "BINARY_POST_OPS",
    "FP32_COMPUTE_TARGETS",
    "PASS_THROUGH_OPS",
    "ONEDNN_KERNELS",
    "kernel_family",
    "conv_params",
    "KERNEL_COUNTERS",
]

aten = torch.ops.aten

# Reference-program op -> the oneDNN int8 kernel family Inductor emits for it.
COMPUTE_OPS: dict[torch._ops.OpOverload, str] = {
    aten.linear.default: "qlinear",  # any input rank: 2-D, and 3-D+ through reshape -> addmm
    aten.conv1d.default: "qconv",
    aten.conv2d.default: "qconv",
    aten.conv3d.default: "qconv",
}

# Post-ops Inductor fuses into the kernel right after the compute op ("unary" fusion).
UNARY_POST_OPS = frozenset(
    {
        aten.relu.default,
        aten.relu_.default,
        aten.gelu.default,
        aten.hardtanh.default,
        aten.hardtanh_.default,
        aten.hardswish.default,
        aten.hardswish_.default,
        aten.silu.default,
        aten.silu_.default,
        aten.leaky_relu.default,
        aten.tanh.default,
        aten.sigmoid.default,
    }
)
# Post-ops Inductor fuses as a second input ("binary" fusion, e.g. residual add).
BINARY_POST_OPS = frozenset({aten.add.Tensor, aten.add_.Tensor})

# Float compute ops that, left in Inductor's post-grad graph, mean a conv/linear ran in fp32.
FP32_COMPUTE_TARGETS = frozenset(
    {
        aten.convolution.default,
        aten.mm.default,
        aten.addmm.default,
        aten.bmm.default,
        aten.baddbmm.default,
        torch.ops.mkldnn._convolution_pointwise.default,
        torch.ops.mkldnn._linear_pointwise.default,
        torch.ops.mkl._mkl_linear.default,
    }
)

# Inductor counters (torch._dynamo.utils.counters["inductor"]) that count int8 kernels.
# Keyed by kernel family: the weight-prepack matcher fires once per conv / linear turned into
# a oneDNN int8 kernel.
KERNEL_COUNTERS: dict[str, str] = {
    "qconv": "qconv_weight_prepack_matcher_count",
    "qlinear": "qlinear_weight_prepack_matcher_count",
}

# Ops Inductor runs on int8 between a dequantize and a quantize of the same qparams (int8
# max-pool, cat, reshape) or fuses into one loop with them: values pass through unchanged in
# range, so the quantizes on both sides form one group of shared qparams.
PASS_THROUGH_OPS = frozenset(
    {
        aten.max_pool2d.default,
        aten.avg_pool2d.default,
        aten.adaptive_avg_pool2d.default,
        aten.cat.default,
        aten.flatten.using_ints,
        aten.view.default,
        aten.reshape.default,
    }
)

# The oneDNN int8 kernels the lowered program holds, by kernel family.
ONEDNN_KERNELS: dict[str, frozenset[torch._ops.OpOverload]] = {
    "qconv": frozenset(
        {
            torch.ops.onednn.qconv_pointwise.default,
            torch.ops.onednn.qconv_pointwise.tensor,
            torch.ops.onednn.qconv2d_pointwise.binary,
            torch.ops.onednn.qconv2d_pointwise.binary_tensor,
        }
    ),
    "qlinear": frozenset(
        {
            torch.ops.onednn.qlinear_pointwise.default,
            torch.ops.onednn.qlinear_pointwise.tensor,
            torch.ops.onednn.qlinear_pointwise.binary,
            torch.ops.onednn.qlinear_pointwise.binary_tensor,
        }
    ),
}


def kernel_family(node: Node) -> str | None:
    """ "qlinear" / "qconv" for a reference conv / linear node, else None."""
    return COMPUTE_OPS.get(cast(torch._ops.OpOverload, node.target))


def conv_params(node: Node) -> tuple[list[int], list[int], list[int], int]:
    """(stride, padding, dilation, groups) of a 2-D ``aten.conv2d.default`` node, defaults
    filled in as the schema gives them."""
    args = list(node.args) + [None] * (7 - len(node.args))

    def ints(v: object, default: int) -> list[int]:
        return [int(i) for i in cast(list[int], v)] if v is not None else [default, default]

    return ints(args[3], 1), ints(args[4], 0), ints(args[5], 1), int(cast(int, args[6] or 1))
