"""The eager lowering: Inductor's freezing passes run on the program, outside ``torch.compile``.

::

    guarded copy of the reference program
      -> torch.export (dims exported as Dim stay dynamic) -> core-aten decompositions
      -> aten.t -> permute            (Inductor's linear patterns expect permute)
      -> view_to_reshape              (what torch.compile's freezing does first; without it the
                                       3-D linears of every transformer stay fp32: torchao 0.18)
      -> freezing_passes + constant_fold: dq -> conv/linear -> post-ops -> q become
         onednn.qconv_pointwise / qlinear_pointwise (weights prepacked once, in the module)
      -> channels-last residuals for the fused conv + add (eager oneDNN requires it)

The result is a ``torch.fx.GraphModule`` that runs the oneDNN int8 kernels eagerly.
"""

from __future__ import annotations

import torch
from torch._dynamo.utils import counters
from torch._inductor.constant_folding import constant_fold
from torch._inductor.fx_passes.freezing_patterns import freezing_passes
from torch._inductor.fx_passes.post_grad import view_to_reshape
from torch.fx import GraphModule, Node

__all__ = ["lower_eagerly", "dynamic_dims", "export_with_dims"]

aten = torch.ops.aten


def dynamic_dims(gm: GraphModule) -> list[set[int]]:
    """Per placeholder, the dimensions that were exported as symbolic (``torch.export.Dim``)."""
    dims: list[set[int]] = []
    for node in gm.graph.find_nodes(op="placeholder"):
        val = node.meta.get("val")
        if isinstance(val, torch.Tensor):
            dims.append({i for i, s in enumerate(val.shape) if isinstance(s, torch.SymInt)})
        else:
            dims.append(set())
    return dims


def export_with_dims(
    gm: GraphModule, example_inputs: tuple[object, ...], dims: list[set[int]]
) -> torch.export.ExportedProgram:
    """``torch.export`` of ``gm`` on ``example_inputs`` with ``dims`` (per input, from
    :func:`dynamic_dims`) kept dynamic; under ``no_grad``, as every lowering step runs it."""
    shapes = tuple({d: torch.export.Dim.DYNAMIC for d in sorted(ds)} if ds else None for ds in dims)
    with torch.no_grad():
        return torch.export.export(gm, tuple(example_inputs), dynamic_shapes=shapes, strict=False)


def _t_to_permute(gm: GraphModule) -> None:
    g = gm.graph
    for node in list(g.find_nodes(op="call_function", target=aten.t.default)):
        with g.inserting_before(node):
            perm = g.call_function(aten.permute.default, (node.args[0], [1, 0]))
        perm.meta.update(node.meta)
        node.replace_all_uses_with(perm)
        g.erase_node(node)
    gm.recompile()


_CONV_BINARY = (
    torch.ops.onednn.qconv2d_pointwise.binary,
    torch.ops.onednn.qconv2d_pointwise.binary_tensor,
)
_ACCUM_ARG = 6  # qaccum: the residual the fused add sums into, in place


def _channels_last_accum(gm: GraphModule) -> None:
    """oneDNN's fused conv + add needs the residual in the conv output's (channels-last)
    layout; under torch.compile Inductor arranges that, eagerly a float producer may hand over
    an NCHW tensor. ``contiguous(channels_last)`` is free when it already is."""
    g = gm.graph
    for node in [n for n in g.nodes if n.target in _CONV_BINARY]:
        accum = node.args[_ACCUM_ARG]
        val = accum.meta.get("val") if isinstance(accum, Node) else None
        fmt = {4: torch.channels_last, 5: torch.channels_last_3d}.get(
            val.dim() if isinstance(val, torch.Tensor) else 0
        )
        if fmt is None:  # conv1d: oneDNN's 3-D layout is the contiguous one
            continue
        with g.inserting_before(node):
            fixed = g.call_function(aten.contiguous.default, (accum,), {"memory_format": fmt})
        node.replace_input_with(accum, fixed)
    gm.recompile()


def lower_eagerly(
    gm: GraphModule, example_inputs: tuple[object, ...], dims: list[set[int]]
) -> tuple[GraphModule, dict[str, int]]:
    """``gm`` (a guarded reference copy) -> (eager GraphModule with oneDNN ops, counter deltas)."""
    ep = export_with_dims(gm, example_inputs, dims)
    with torch.no_grad():
        lowered = ep.run_decompositions().module()
    _t_to_permute(lowered)
    view_to_reshape(lowered)
    before = {k: int(v) for k, v in counters["inductor"].items()}
    with torch.no_grad():
        freezing_passes(lowered, tuple(example_inputs))
        constant_fold(lowered)
    _channels_last_accum(lowered)
    after = {k: int(v) for k, v in counters["inductor"].items()}
    delta = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    lowered.graph.eliminate_dead_code()
    lowered.recompile()
    return lowered, delta
