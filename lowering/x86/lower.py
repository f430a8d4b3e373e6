"""``lower_pt2e_quantized_to_x86``: a converted program -> fused oneDNN int8 kernels.

The pipeline, each step a named pass over a private copy of the reference program::

    copy / unwrap ExportedProgram
      -> keep_inexact_activations_float   (no VNNI: uint8 [0, 255] would saturate int16)
      -> separate_unary_from_binary       (Inductor asserts on linear -> relu -> add)
      -> torch.compile under scoped freezing config, compiled once on example_inputs
      -> report: static classification x post-grad graph x Inductor counters
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch._dynamo.utils import counters
from torch.fx import GraphModule

from pt2q.lowering.x86.coverage import KernelRecorder, LoweringReport, NodeLowering, classify
from pt2q.lowering.x86.guards import keep_inexact_activations_float, separate_unary_from_binary
from pt2q.lowering.x86.isa import CpuInt8Isa, detect_isa
from pt2q.lowering.x86.module import X86LoweredModule

__all__ = ["lower_pt2e_quantized_to_x86", "dynamic_dims"]

_GUARD_PASSES: tuple[tuple[str, Callable[[GraphModule, CpuInt8Isa], bool]], ...] = (
    ("keep_inexact_activations_float", keep_inexact_activations_float),
    ("separate_unary_from_binary", lambda gm, _isa: separate_unary_from_binary(gm)),
)


def _as_graph_module(model: GraphModule | torch.export.ExportedProgram) -> GraphModule:
    if isinstance(model, torch.export.ExportedProgram):
        return model.module()  # a fresh GraphModule: nothing of the caller's is mutated
    if isinstance(model, GraphModule):
        # A new graph over the same (read-only) constants: the caller's graph is never edited.
        return GraphModule(model, copy.deepcopy(model.graph), class_name=type(model).__name__)
    raise TypeError(
        "lower_pt2e_quantized_to_x86: model must be the torch.fx.GraphModule returned by "
        f"convert_pt2e or a torch.export.ExportedProgram of it, got {type(model).__name__}"
    )


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


def _counter_snapshot() -> dict[str, int]:
    return {k: int(v) for k, v in counters["inductor"].items()}


def lower_pt2e_quantized_to_x86(
    model: GraphModule | torch.export.ExportedProgram,
    example_inputs: tuple[Any, ...] | None = None,
    compile: bool = True,
    *,
    mixed_bf16: bool = False,
    **compile_options: Any,
) -> X86LoweredModule:
    """Lower a converted (reference) program to Inductor's fused oneDNN int8 kernels.

    Contract:
      * ``model`` is what ``convert_pt2e`` returns (or an ``ExportedProgram`` of it, e.g. from
        ``torch.export.load``); it is not modified.
      * Returns an :class:`X86LoweredModule` already compiled on ``example_inputs`` (required),
        with weights prepacked once (Inductor freezing). Its outputs match the reference
        program within ``LOWERED_VS_REFERENCE_STEPS``; ``.report`` lists which conv / linear
        nodes became oneDNN int8 kernels and why the others did not.
      * Dimensions exported as ``torch.export.Dim`` stay dynamic in the compiled code.
      * ``mixed_bf16=True`` runs float regions between int8 kernels in bfloat16 (autocast);
        results then match the reference only to bf16 precision.
      * Inductor configuration is scoped to this module's compilations; global config is
        untouched. ``compile_options`` are passed to ``torch.compile`` (e.g. ``mode``).
    """
    if not compile:
        raise NotImplementedError(
            "lower_pt2e_quantized_to_x86(compile=False): pt2q lowers only through Inductor "
            "(freezing + torch.compile); the eager freezing-pass path is what breaks on "
            "3-D linears and conv -> flatten -> linear"
        )
    if example_inputs is None:
        raise ValueError(
            "lower_pt2e_quantized_to_x86: example_inputs is required (the module is compiled "
            "and its weights prepacked on them before it is returned), got None"
        )
    gm = _as_graph_module(model)
    isa = detect_isa()
    static = classify(gm, isa)  # before the guards rename nothing, so names are the user's
    for name, fn in _GUARD_PASSES:
        try:
            fn(gm, isa)
        except Exception as e:  # noqa: BLE001 - re-raised with the pass name
            raise RuntimeError(f"lower_pt2e_quantized_to_x86: pass {name} failed: {e}") from e

    candidates = {n for n, (_, _, reason) in static.items() if not reason}
    recorder = KernelRecorder(candidates)
    before = _counter_snapshot()

    def report(rec: KernelRecorder) -> LoweringReport:
        nodes = []
        for name, (op, kernel, reason) in static.items():
            if not reason and name in rec.float_nodes:
                reason = "Inductor's int8 patterns did not match it (left as a float op)"
            nodes.append(NodeLowering(name, op, None if reason else kernel, reason))
        after = _counter_snapshot()
        delta = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
        return LoweringReport(isa, tuple(nodes), delta)

    opts = dict(compile_options)
    opts.setdefault("dynamic", None)
    lowered = X86LoweredModule(gm, recorder, report, mixed_bf16, opts)
    dims = dynamic_dims(gm)
    if len(dims) != len(example_inputs):
        raise ValueError(
            f"lower_pt2e_quantized_to_x86: the program takes {len(dims)} flat inputs, "
            f"example_inputs has {len(example_inputs)}"
        )
    # Detached aliases carry the dynamic marks, so the caller's tensors are left as they are.
    inputs = tuple(x.detach() if isinstance(x, torch.Tensor) else x for x in example_inputs)
    for x, symbolic in zip(inputs, dims, strict=True):
        for d in sorted(symbolic):
            torch._dynamo.mark_dynamic(x, d)
    lowered(*inputs)
    return lowered
