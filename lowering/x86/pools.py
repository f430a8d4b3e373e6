"""uint8 max-pools for the compiled tiers and the package.

``dq -> max_pool2d -> q`` at one scale / zero point (x86 quantizers share the input's qparams
with a max-pool's output) equals ``max_pool2d`` of the uint8 values: the max commutes with the
monotone dequantize / quantize, which round-trip uint8 exactly at shared qparams, and padding
never wins a max. Rewritten so, Inductor compiles the pool into a C++ loop over the uint8
values; left as the triple, its int8 pattern calls ATen's ``quantized.max_pool2d``, which
AOTInductor reaches only through its proxy executor (ResNet-50's 2x64x112x112 pool: ~100 us
per call against ~45 us compiled). The lowered module's eager graph keeps the triple: ATen's
eager ``max_pool2d`` rejects channels-last uint8 inputs of that size.
"""

from __future__ import annotations

import torch
from torch.fx import GraphModule

from pt2q.qdq.views import act_q, out_q

__all__ = ["uint8_max_pools"]

aten = torch.ops.aten


def uint8_max_pools(gm: GraphModule) -> bool:
    """Rewrite every uint8 ``dq -> max_pool2d -> q`` of shared static qparams in ``gm`` (in
    place) as ``max_pool2d`` of the uint8 tensor; returns whether anything changed::

        x_u8 -> dq(s, z) -> max_pool2d -> q(s, z) -> readers      (dq kept if others read it)
        x_u8 -> max_pool2d -> readers
    """
    changed = False
    for pool in list(gm.graph.nodes):
        if pool.target != aten.max_pool2d.default or len(pool.users) != 1:
            continue
        a, q = act_q(pool.args[0]), out_q(next(iter(pool.users)))
        if a is None or q is None or not a.is_static or a.dtype != torch.uint8:
            continue
        shared = (q.scale, q.zero_point, q.qmin, q.qmax, q.dtype)
        if shared != (a.scale, a.zero_point, a.qmin, a.qmax, a.dtype):
            continue
        with gm.graph.inserting_before(pool):
            pooled = gm.graph.call_function(pool.target, (a.source, *pool.args[1:]), pool.kwargs)
        val = pool.meta.get("val")
        if isinstance(val, torch.Tensor):
            pooled.meta["val"] = val.to(torch.uint8)
        q.q.replace_all_uses_with(pooled)
        gm.graph.erase_node(q.q)
        gm.graph.erase_node(pool)
        if not a.dq.users:  # others may still read the dequantized value
            gm.graph.erase_node(a.dq)
        changed = True
    if changed:
        gm.graph.lint()
        gm.recompile()
    return changed
