"""Converted programs of the LLM schemes (``pt2q.quantizers.llm_config``) for the lowering tests,
and the quantities the LLM tolerance rule needs (what a weight kernel reads, weight ranges)."""

from __future__ import annotations

import torch
from torch.fx import GraphModule

from pt2q.lowering.llm import llm_linear
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizers import X86InductorQuantizer, XNNPACKQuantizer, llm_config

qd = torch.ops.quantized_decomposed
SCHEMES = ("int8wo", "int4wo", "8da8w", "8da4w")
QUANTIZERS = {"x86": X86InductorQuantizer, "xnnpack": XNNPACKQuantizer}


def converted_program(
    model: torch.nn.Module,
    scheme: str,
    example: tuple[torch.Tensor, ...],
    group: int = 32,
    backend: str = "x86",
    dynamic_shapes: object = None,
) -> GraphModule:
    """export -> prepare (llm_config(scheme, group) globally) -> one calibration run -> convert."""
    gm = torch.export.export(model.eval(), example, dynamic_shapes=dynamic_shapes).module()
    prepared = prepare_pt2e(gm, QUANTIZERS[backend]().set_global(llm_config(scheme, group)))
    prepared(*example)
    return convert_pt2e(prepared)


def linears(gm: GraphModule) -> list[torch.fx.Node]:
    return [n for n in gm.graph.nodes if n.target == torch.ops.aten.linear.default]


def weight_range(gm: GraphModule, node: torch.fx.Node) -> torch.Tensor:
    """(N, K) full quantized range (qmax - qmin) * scale of each weight element of ``node``."""
    w = llm_linear(gm, node).weight
    s = w.scale.repeat_interleave(w.group_size, dim=1)
    return (w.qmax - w.qmin) * s


def kernel_input(x: torch.Tensor, scheme: str) -> torch.Tensor:
    """What the weight kernel reads: x, or its per-token q/dq for 8da*."""
    if not scheme.startswith("8da"):
        return x
    s, zp = qd.choose_qparams_per_token_asymmetric(x, torch.int8)
    xq = qd.quantize_per_token(x, s, zp, -128, 127, torch.int8)
    return qd.dequantize_per_token(xq, s, zp, -128, 127, torch.int8, torch.float32)
