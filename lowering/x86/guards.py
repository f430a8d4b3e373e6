"""Graph rewrites on the lowering's copy of the reference program that keep Inductor correct.

Each pass edits a copy of the reference program before ``torch.compile``, returns whether it
changed the graph, and leaves values bit-identical to the reference program.
"""

from __future__ import annotations

import torch
from torch.fx import GraphModule, Node

from pt2q.lowering.x86.patterns import BINARY_POST_OPS, COMPUTE_OPS, UNARY_POST_OPS
from pt2q.qdq.views import act_q, out_q

__all__ = [
    "separate_unary_from_binary",
    "contiguous_linear_inputs",
    "unfused_conv1d_add",
    "clamp_narrow_fused_outputs",
]

aten = torch.ops.aten


def _insert_barrier(gm: GraphModule, node: Node, consumers: list[Node]) -> None:
    """``node -> consumer`` becomes ``node -> mul(., 1.0) -> consumer`` for each consumer: a
    value-preserving op that Inductor's binary post-op patterns do not match through."""
    with gm.graph.inserting_after(node):
        barrier = gm.graph.call_function(aten.mul.Tensor, (node, 1.0))
    barrier.meta.update({k: v for k, v in node.meta.items() if k != "from_node"})
    for c in consumers:
        c.replace_input_with(node, barrier)


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
        _insert_barrier(gm, unary, binaries)
        changed = True
    if changed:
        gm.recompile()
    return changed


def contiguous_linear_inputs(gm: GraphModule) -> bool:
    """Quantize a linear's activation from a contiguous tensor.

    ``quantize_per_tensor`` keeps its input's strides, so after attention
    (``sdpa -> transpose -> reshape -> q -> dq -> linear``) the linear sees a non-contiguous
    3-D input and decomposes through ``expand -> bmm``, which no Inductor int8 pattern matches
    (the output projection of every attention block stayed fp32). Strides at export time can
    differ from the reference's ``val``, so every 3-D+ linear input gets ``contiguous`` before
    its quantize: free when the tensor already is, values unchanged.
    """
    changed = False
    for node in list(gm.graph.nodes):
        if node.target != aten.linear.default:
            continue
        a = act_q(node.args[0])
        if a is None or a.float_input is None:
            continue
        x = a.float_input
        val = x.meta.get("val")
        if not isinstance(val, torch.Tensor) or val.dim() < 3:
            continue
        with gm.graph.inserting_before(a.source):
            c = gm.graph.call_function(aten.contiguous.default, (x,))
        c.meta.update({k: v for k, v in x.meta.items() if k != "from_node"})
        c.meta["val"] = val.contiguous()
        a.source.replace_input_with(x, c)
        changed = True
    if changed:
        gm.recompile()
    return changed


def unfused_conv1d_add(gm: GraphModule) -> bool:
    """Put ``* 1.0`` between a conv1d (and its unary post-op) and a following add.

    Inductor's freezing pass fuses conv + add into ``qconv2d_pointwise.binary`` for any conv
    rank, but oneDNN's kernel supports the sum post-op only for 2-D convs (torch 2.13 raises
    "post_op sum ... is supported for quantized pointwise conv2d"). The add then runs as its
    own op after the int8 conv1d.
    """
    changed = False
    for node in list(gm.graph.nodes):
        if node.target != aten.conv1d.default:
            continue
        last = node
        if len(last.users) == 1 and next(iter(last.users)).target in UNARY_POST_OPS:
            last = next(iter(last.users))
        adds = [u for u in last.users if u.target in BINARY_POST_OPS]
        if not adds:
            continue
        _insert_barrier(gm, last, adds)
        changed = True
    if changed:
        gm.recompile()
    return changed


_FUSABLE_OUTPUT_PRODUCERS = frozenset(COMPUTE_OPS) | UNARY_POST_OPS | BINARY_POST_OPS


def clamp_narrow_fused_outputs(gm: GraphModule) -> bool:
    """Make a narrow uint8 output quantize's clamp explicit: ``q -> clamp_max(., qmax)``.

    Inductor fuses ``conv/linear (-> post-ops) -> q`` into one oneDNN kernel whose uint8 output
    saturates at [0, 255]; its pattern matches ``q``'s ``quant_min`` / ``quant_max`` but never
    uses them (torch 2.13, ``quantization.py`` ``generate_pattern_with_output_quant``). For a
    quantize to [0, 127] (``reduce_range``, or the 7-bit form of ``activation_forms.py``) a value
    beyond the calibrated range then comes out up to 255 instead of 127: off the reference by
    many steps (37 on ``tests/x86/test_narrow_outputs.py``'s inputs) and, without VNNI,
    saturating the next kernel's int16 pairs. The clamp on the uint8 tensor restores the reference's value;
    Inductor runs it as one pass over the uint8 output, or fuses it into a quantize it decomposes.
    """
    changed = False
    for node in list(gm.graph.nodes):
        q = out_q(node)
        if q is None or q.dtype != torch.uint8 or (q.qmin, q.qmax) == (0, 255):
            continue
        producer = q.value
        while producer.target == aten.contiguous.default:  # contiguous_linear_inputs' own
            producer = producer.args[0]  # type: ignore[assignment]
        if producer.op != "call_function" or producer.target not in _FUSABLE_OUTPUT_PRODUCERS:
            continue
        users = list(node.users)
        # clamp_max, then clamp_min only where needed (uint8 is >= 0): aten.clamp would
        # decompose to clamp_min -> clamp_max, which Inductor's qconv hardtanh post-op pattern
        # matches on the fused kernel's uint8 output and crashes on (KeyError 'o_inv_scale')
        clamped = node
        for op, bound in ((aten.clamp_max.default, q.qmax), (aten.clamp_min.default, q.qmin)):
            if op is aten.clamp_min.default and bound <= 0:
                continue
            with gm.graph.inserting_after(clamped):
                clamped = gm.graph.call_function(op, (clamped, bound))
            clamped.meta.update({k: v for k, v in node.meta.items() if k != "from_node"})
        for user in users:
            user.replace_input_with(node, clamped)
        changed = True
    if changed:
        gm.recompile()
    return changed
