"""Graph rewrites on the reference program that keep Inductor's int8 passes correct.

Each pass edits a copy of the reference program before ``torch.compile``, returns whether it
changed the graph, and leaves values bit-identical to the reference program.
"""

from __future__ import annotations

import torch
from torch.fx import GraphModule, Node

from pt2q.lowering.x86.coverage import is_inexact_activation
from pt2q.lowering.x86.isa import CpuInt8Isa
from pt2q.lowering.x86.patterns import (
    ACTIVATION_DEQUANTIZE_OPS,
    BINARY_POST_OPS,
    COMPUTE_OPS,
    UNARY_POST_OPS,
)

__all__ = ["keep_inexact_activations_float", "separate_unary_from_binary"]

aten = torch.ops.aten


def keep_inexact_activations_float(gm: GraphModule, isa: CpuInt8Isa) -> bool:
    """Hide from Inductor the activation dequantizes whose int8 kernel would be inexact.

    Without VNNI, oneDNN saturates on uint8 activations above 127 (see ``isa.py``). For each
    conv / linear whose activation is such a dequantize, the consumer gets its own dequantize
    written as plain arithmetic, which no Inductor int8 pattern matches; the node then runs in
    float exactly as in the reference program::

        q --> dequantize_per_tensor(s, zp) --> linear        q --> to(f32) - zp --> * s --> linear
    """
    changed = False
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in COMPUTE_OPS:
            continue
        dq = node.args[0]
        if not isinstance(dq, Node) or dq.target not in ACTIVATION_DEQUANTIZE_OPS:
            continue
        if not is_inexact_activation(dq, isa):
            continue
        x, scale, zp = dq.args[0], dq.args[1], dq.args[2]
        with gm.graph.inserting_before(node):
            # Same formula as quantized_decomposed.dequantize_per_tensor: (x.f32 - zp) * scale.
            xf = gm.graph.call_function(aten._to_copy.default, (x,), {"dtype": torch.float32})
            centered = gm.graph.call_function(aten.sub.Tensor, (xf, zp))
            explicit = gm.graph.call_function(aten.mul.Tensor, (centered, scale))
        explicit.meta.update({k: v for k, v in dq.meta.items() if k != "from_node"})
        node.replace_input_with(dq, explicit)
        changed = True
    if changed:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return changed


def separate_unary_from_binary(gm: GraphModule) -> bool:
    """Put ``* 1.0`` between a conv/linear's fused activation and a following add.

    Inductor fuses ``conv/linear -> unary`` first, then its binary pattern matches the fused
    kernel followed by ``add`` and asserts that no unary was fused (torch 2.13,
    ``quantization.py`` ``qlinear_post_op_fusion``: ``assert postop_name == "none"``)::

        linear -> relu -> add(., y)        linear -> relu -> mul(., 1.0) -> add(., y)

    The multiply blocks the binary match and costs nothing: Inductor fuses it into the add.
    """
    changed = False
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in COMPUTE_OPS:
            continue
        users = list(node.users)
        if len(users) != 1 or users[0].target not in UNARY_POST_OPS:
            continue
        unary = users[0]
        binaries = [u for u in unary.users if u.target in BINARY_POST_OPS]
        if not binaries:
            continue
        with gm.graph.inserting_after(unary):
            barrier = gm.graph.call_function(aten.mul.Tensor, (unary, 1.0))
        barrier.meta.update({k: v for k, v in unary.meta.items() if k != "from_node"})
        for b in binaries:
            b.replace_input_with(unary, barrier)
        changed = True
    if changed:
        gm.recompile()
    return changed
