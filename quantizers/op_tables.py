"""Op support as data: the aten overloads each pattern family matches, shared by all quantizers.

Annotators match ``node.target`` against these tables on the exported aten graph (what
``torch.export.export(...).module()`` produces on torch 2.13), never against
``source_fn_stack`` partitions. Quantizers pick families and post-ops from here; they do not
keep their own copies.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import torch

__all__ = [
    "OpOverload",
    "CONV_OPS",
    "CONV_TRANSPOSE_OPS",
    "LINEAR_OPS",
    "MATMUL_OPS",
    "ATTENTION_OPS",
    "ADD_OPS",
    "MUL_OPS",
    "RELU_OPS",
    "ACTIVATION_OPS",
    "MAX_POOL_OPS",
    "AVG_POOL_OPS",
    "ADAPTIVE_AVG_POOL_OPS",
    "CAT_OPS",
    "PASS_THROUGH_OPS",
    "EMBEDDING_OPS",
    "BATCH_NORM_OPS",
    "WEIGHTED_OPS",
    "FUNCTION_TO_OPS",
    "ops_of_function",
]

aten = torch.ops.aten
OpOverload = torch._ops.OpOverload

# Convolutions: (input, weight, bias, ...). `padding="same"` exports as the `.padding` overload.
CONV_OPS: frozenset[OpOverload] = frozenset(
    {
        aten.conv1d.default,
        aten.conv1d.padding,
        aten.conv2d.default,
        aten.conv2d.padding,
        aten.conv3d.default,
        aten.conv3d.padding,
    }
)
# Transposed convolutions: weight is (C_in, C_out / groups, ...), so per-channel axis is 1.
CONV_TRANSPOSE_OPS: frozenset[OpOverload] = frozenset(
    {aten.conv_transpose1d.default, aten.conv_transpose2d.input, aten.conv_transpose3d.input}
)
# linear(input (..., K), weight (N, K), bias (N,)): 2-D and 3-D inputs export to the same op.
LINEAR_OPS: frozenset[OpOverload] = frozenset({aten.linear.default})
# Activation x activation products (both inputs quantized, no weight).
MATMUL_OPS: frozenset[OpOverload] = frozenset({aten.matmul.default, aten.bmm.default})

# Fused attention as torch.export leaves it (pre-dispatch keeps the composite op; the CPU flash
# kernel appears when a graph was decomposed further).
ATTENTION_OPS: frozenset[OpOverload] = frozenset(
    {
        aten.scaled_dot_product_attention.default,
        aten._scaled_dot_product_flash_attention_for_cpu.default,
    }
)

ADD_OPS: frozenset[OpOverload] = frozenset({aten.add.Tensor, aten.add_.Tensor})
MUL_OPS: frozenset[OpOverload] = frozenset({aten.mul.Tensor, aten.mul_.Tensor})
RELU_OPS: frozenset[OpOverload] = frozenset({aten.relu.default, aten.relu_.default})

# Element-wise activations a backend may fuse after a weighted op (each backend picks its subset;
# the weighted annotator gives the ones it cannot fuse a float reason).
ACTIVATION_OPS: frozenset[OpOverload] = frozenset(
    {
        aten.relu.default,
        aten.relu_.default,
        aten.hardtanh.default,
        aten.hardtanh_.default,
        aten.relu6.default,
        aten.hardswish.default,
        aten.hardswish_.default,
        aten.silu.default,
        aten.silu_.default,
        aten.gelu.default,
    }
)

MAX_POOL_OPS: frozenset[OpOverload] = frozenset({aten.max_pool2d.default})
AVG_POOL_OPS: frozenset[OpOverload] = frozenset({aten.avg_pool2d.default})
ADAPTIVE_AVG_POOL_OPS: frozenset[OpOverload] = frozenset({aten.adaptive_avg_pool2d.default})
CAT_OPS: frozenset[OpOverload] = frozenset({aten.cat.default, aten.concat.default})

# Ops whose output is a re-arrangement of (or a selection from) the input values: the output
# shares the input's qparams.
PASS_THROUGH_OPS: frozenset[OpOverload] = frozenset(
    {
        aten.flatten.using_ints,
        aten.view.default,
        aten.reshape.default,
        aten.permute.default,
        aten.transpose.int,
        aten.squeeze.dim,
        aten.squeeze.dims,
        aten.squeeze.default,
        aten.unsqueeze.default,
        aten.contiguous.default,
        aten.clone.default,
        aten.expand.default,
        aten.slice.Tensor,
        aten.select.int,
    }
)
EMBEDDING_OPS: frozenset[OpOverload] = frozenset(
    {aten.embedding.default, aten.embedding_bag.default, aten.embedding_bag.padding_idx}
)
BATCH_NORM_OPS: frozenset[OpOverload] = frozenset(
    {
        aten.batch_norm.default,
        aten._native_batch_norm_legit.default,
        aten._native_batch_norm_legit_no_training.default,
        aten.cudnn_batch_norm.default,
    }
)
# Ops that carry a weight; the coverage report lists every one of these left in float.
WEIGHTED_OPS: frozenset[OpOverload] = CONV_OPS | CONV_TRANSPOSE_OPS | LINEAR_OPS | EMBEDDING_OPS

# set_function_type_qconfig / set_operator_type keys: Python callables -> the aten ops they
# export to (source_fn_stack is not recorded by torch 2.13's export, so functions are mapped here).
FUNCTION_TO_OPS: MappingProxyType[Any, frozenset[OpOverload]] = MappingProxyType(
    {
        torch.nn.functional.linear: LINEAR_OPS,
        torch.nn.functional.conv1d: frozenset({aten.conv1d.default, aten.conv1d.padding}),
        torch.nn.functional.conv2d: frozenset({aten.conv2d.default, aten.conv2d.padding}),
        torch.nn.functional.conv3d: frozenset({aten.conv3d.default, aten.conv3d.padding}),
        torch.nn.functional.conv_transpose1d: frozenset({aten.conv_transpose1d.default}),
        torch.nn.functional.conv_transpose2d: frozenset({aten.conv_transpose2d.input}),
        torch.matmul: frozenset({aten.matmul.default}),
        torch.bmm: frozenset({aten.bmm.default}),
        torch.add: ADD_OPS,
        torch.mul: MUL_OPS,
        torch.cat: CAT_OPS,
        torch.nn.functional.embedding: frozenset({aten.embedding.default}),
        torch.nn.functional.max_pool2d: MAX_POOL_OPS,
        torch.nn.functional.adaptive_avg_pool2d: ADAPTIVE_AVG_POOL_OPS,
        torch.nn.functional.avg_pool2d: AVG_POOL_OPS,
    }
)


def ops_of_function(fn: Callable[..., Any] | OpOverload) -> frozenset[OpOverload]:
    """The aten overloads a Python function (or an aten overload itself) exports to.

    Raises ValueError naming ``fn`` if it is neither an aten overload nor in FUNCTION_TO_OPS.
    """
    if isinstance(fn, OpOverload):
        return frozenset({fn})
    if isinstance(fn, torch._ops.OpOverloadPacket):
        return frozenset(getattr(fn, name) for name in fn.overloads())
    ops = FUNCTION_TO_OPS.get(fn)
    if ops is None:
        known = sorted(getattr(f, "__name__", str(f)) for f in FUNCTION_TO_OPS)
        raise ValueError(
            f"function type {fn!r}: expected an aten overload or one of {known}, "
            "found an unknown callable"
        )
    return ops
