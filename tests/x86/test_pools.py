"""uint8 max-pools (lowering/x86/pools.py): ``dq -> max_pool2d -> q`` at shared qparams is the
pool of the uint8 values, bit for bit; other qparams are left alone."""

from __future__ import annotations

import torch
import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers quantized_decomposed)
from torch.fx import Graph, GraphModule

from pt2q.lowering.x86.pools import uint8_max_pools

qd = torch.ops.quantized_decomposed
aten = torch.ops.aten


def _triple(out_scale: float, out_zp: int) -> GraphModule:
    """u8 -> dq(0.05, 7) -> max_pool2d(3, 2, 1) -> q(out_scale, out_zp) -> dq (a float reader)."""
    g = Graph()
    x = g.placeholder("x")
    dq = g.call_function(qd.dequantize_per_tensor.default, (x, 0.05, 7, 0, 255, torch.uint8))
    pool = g.call_function(aten.max_pool2d.default, (dq, [3, 3], [2, 2], [1, 1]))
    q = g.call_function(
        qd.quantize_per_tensor.default, (pool, out_scale, out_zp, 0, 255, torch.uint8)
    )
    out = g.call_function(
        qd.dequantize_per_tensor.default, (q, out_scale, out_zp, 0, 255, torch.uint8)
    )
    g.output(out)
    return GraphModule(torch.nn.Module(), g)


def _targets(gm: GraphModule) -> list[str]:
    return [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]


def test_shared_qparams_pool_the_uint8_values_exactly() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (2, 8, 13, 13), dtype=torch.uint8, generator=g)
    x[:, :, 0, :] = 0  # the padded border: a padding value must never win the max
    gm = _triple(0.05, 7)
    want = gm(x)
    assert uint8_max_pools(gm)
    assert _targets(gm) == [
        "aten.max_pool2d.default",
        "quantized_decomposed.dequantize_per_tensor.default",
    ]
    pool = next(n for n in gm.graph.nodes if n.target == aten.max_pool2d.default)
    assert pool.args[0].op == "placeholder"  # reads the uint8 input itself
    assert torch.equal(gm(x), want)
    compiled = torch.compile(gm)  # what the compiled tiers run: Inductor's loop over uint8
    assert torch.equal(compiled(x), want)
    assert torch.equal(compiled(x.contiguous(memory_format=torch.channels_last)), want)


def test_other_qparams_stay_a_triple() -> None:
    gm = _triple(0.1, 7)  # requantized to another scale: not a pool of the uint8 values
    assert not uint8_max_pools(gm)
    assert "aten.max_pool2d.default" in _targets(gm) and len(_targets(gm)) == 4
