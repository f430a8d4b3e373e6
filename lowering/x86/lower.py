"""``lower_pt2e_quantized_to_x86``: a converted program -> a GraphModule of oneDNN int8 kernels.

The pipeline, each step a named pass over a private copy of the reference program::

    copy / unwrap ExportedProgram
      -> llm_linears                   (int8wo / int4wo / 8da*w: torch's weight kernels or, for
                                        8da8w, oneDNN's qlinear, llm/; without VNNI its tokens
                                        saturating / 7-bit / float, measured (token_forms.py);
                                        small 8da8w linears timed first: float when slower)
      -> choose_activation_forms       (no VNNI: full-range uint8 -> saturating / 7-bit / float,
                                        measured)
      -> payoff                        (small conv / linear timed: float when int8 is slower)
      -> apply_forms                   (rewrites the copy for both)
      -> remove_dangling_qdq           (q/dq pairs whose consumers are all float ops)
      -> separate_unary_from_binary    (Inductor asserts on linear -> relu -> add)
      -> contiguous_linear_inputs      (a linear after attention would decompose to expand+bmm)
      -> unfused_conv1d_add            (oneDNN's conv + sum post-op is 2-D only)
      -> clamp_narrow_fused_outputs    (a fused [0, 127] output quantize would saturate at 255)
      -> lower_eagerly                 (Inductor's freezing passes, eagerly: the returned graph)
      -> uint8_max_pools               (compiled tiers only: dq -> max_pool2d -> q as a uint8 pool)
      -> report                        (NodeDecision per conv/linear, post-op, attention op, q/dq)
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.lowering.llm.match import LlmLinear
from pt2q.lowering.x86.activation_forms import (
    FORM_7BIT,
    FORM_FLOAT,
    ActivationChoice,
    apply_forms,
    choose_activation_forms,
    record_values,
)
from pt2q.lowering.x86.eager import dynamic_dims, lower_eagerly
from pt2q.lowering.x86.guards import (
    clamp_narrow_fused_outputs,
    contiguous_linear_inputs,
    separate_unary_from_binary,
    unfused_conv1d_add,
)
from pt2q.lowering.x86.isa import CpuInt8Isa, detect_isa
from pt2q.lowering.x86.llm import apply_llm_pass, merge_llm_report
from pt2q.lowering.x86.llm.integer import per_token_linears
from pt2q.lowering.x86.module import X86LoweredModule
from pt2q.lowering.x86.patterns import BINARY_POST_OPS, COMPUTE_OPS
from pt2q.lowering.x86.payoff import (
    ALWAYS_PAYS_MACS,
    macs,
    slower_in_int8,
    time_int8_vs_float,
    time_token_int8_vs_float,
)
from pt2q.lowering.x86.pools import uint8_max_pools
from pt2q.lowering.x86.report import build_report, static_reasons
from pt2q.lowering.x86.token_forms import choose_token_forms
from pt2q.qdq import attach_report
from pt2q.qdq.dangling import remove_dangling_qdq
from pt2q.qdq.engine import constant_value
from pt2q.qdq.ops import is_quantize
from pt2q.qdq.program_checks import require_converted_program
from pt2q.qdq.views import act_q, weight_q

__all__ = [
    "lower_pt2e_quantized_to_x86",
    "prepare_for_inductor",
    "compiled_program",
    "dynamic_dims",
]


def _as_graph_module(model: GraphModule | torch.export.ExportedProgram) -> GraphModule:
    if isinstance(model, torch.export.ExportedProgram):
        return model.module()  # a fresh GraphModule: nothing of the caller's is mutated
    if isinstance(model, GraphModule):
        # A new graph over the same (read-only) constants: the caller's graph is never edited.
        return copy_of(model)
    raise TypeError(
        "lower_pt2e_quantized_to_x86: model must be the torch.fx.GraphModule returned by "
        f"convert_pt2e or a torch.export.ExportedProgram of it, got {type(model).__name__}"
    )


def _reads_int8(consumer: Node, dq: Node) -> bool:
    """Whether an Inductor x86 int8 pattern consumes ``dq``'s int8 value at ``consumer``."""
    if consumer.target in COMPUTE_OPS:
        return consumer.args[0] is dq
    if consumer.target in BINARY_POST_OPS:
        return True  # the extra input of a fused conv/linear + add
    return any(is_quantize(u) for u in consumer.users)  # dq -> op -> q: an int8 chain


def _check_inputs(
    gm: GraphModule, example_inputs: tuple[Any, ...] | None
) -> tuple[tuple[Any, ...], list[set[int]]]:
    if example_inputs is None:
        raise ValueError(
            "lower_pt2e_quantized_to_x86: example_inputs is required (the activation forms are "
            "measured and the weights prepacked on them), got None"
        )
    dims = dynamic_dims(gm)
    if len(dims) != len(example_inputs):
        raise ValueError(
            f"lower_pt2e_quantized_to_x86: the program takes {len(dims)} flat inputs, "
            f"example_inputs has {len(example_inputs)}"
        )
    inputs = tuple(x.detach() if isinstance(x, torch.Tensor) else x for x in example_inputs)
    return inputs, dims


_Pass = Callable[[], object]


def _run(name: str, fn: _Pass) -> Any:
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - re-raised with the pass name
        raise RuntimeError(f"lower_pt2e_quantized_to_x86: pass {name} failed: {e}") from e


def _payoff(
    gm: GraphModule, inputs: tuple[Any, ...], reasons: dict[str, str]
) -> list[ActivationChoice]:
    """Float choices for the small conv / linear nodes whose int8 kernel measures slower."""
    small: dict[Node, Node] = {}
    for node in gm.graph.nodes:
        if reasons.get(node.name, "x") or node.target not in (
            torch.ops.aten.linear.default,
            torch.ops.aten.conv2d.default,
        ):
            continue
        a, wq = act_q(node.args[0]), weight_q(node.args[1])
        x = a.float_input if a is not None else None
        x_val = x.meta.get("val") if x is not None else None
        if wq is None or x is None or not isinstance(x_val, torch.Tensor):
            continue
        w = constant_value(gm, wq.qweight)
        if macs(node, x_val, w) < ALWAYS_PAYS_MACS:
            small[node] = x
    if not small:
        return []
    values = record_values(gm, inputs, set(small.values()))
    timings = {n.name: time_int8_vs_float(gm, n, values[x]) for n, x in small.items()}  # type: ignore[arg-type]
    slow = slower_in_int8(timings)
    return [ActivationChoice((), (name,), FORM_FLOAT, why) for name, why in slow.items()]


def _token_payoff(
    gm: GraphModule, inputs: tuple[Any, ...], forms: dict[str, tuple[str, str]]
) -> dict[str, str]:
    """{name: reason} of the small 8da8w linears (per-token dynamic: ``llm_config("8da8w")``,
    X86InductorQuantizer's linears with no fused activation) whose oneDNN int8 form
    (``llm/integer.py``, in the token form ``forms`` gives: 7-bit or saturating without VNNI)
    measures slower than the float linear on the example inputs."""
    small: dict[Node, LlmLinear] = {}
    for node, lin in per_token_linears(gm).items():
        if lin.tokens is None or forms.get(node.name, ("",))[0] == FORM_FLOAT:
            continue
        x_val = lin.tokens.source.meta.get("val")
        if isinstance(x_val, torch.Tensor) and macs(node, x_val, lin.weight.q) < ALWAYS_PAYS_MACS:
            small[node] = lin
    if not small:
        return {}
    values = record_values(gm, inputs, {lin.tokens.source for lin in small.values()})  # type: ignore[union-attr]
    timings = {}
    for node, lin in small.items():
        bias = constant_value(gm, lin.bias) if lin.bias is not None else None
        x = values[lin.tokens.source]  # type: ignore[union-attr]
        timings[node.name] = time_token_int8_vs_float(
            x,  # type: ignore[arg-type]
            lin.weight.q,
            lin.weight.scale,
            bias,
            seven_bit=forms.get(node.name, ("",))[0] == FORM_7BIT,
        )
    return slower_in_int8(timings)


def prepare_for_inductor(
    model: GraphModule | torch.export.ExportedProgram,
    example_inputs: tuple[Any, ...] | None,
    isa: CpuInt8Isa | None = None,
    payoff: bool = True,
    llm_compute_dtype: torch.dtype = torch.bfloat16,
) -> tuple[GraphModule, Any, tuple[Any, ...], list[set[int]]]:
    """The guarded private copy Inductor's int8 passes lower, with what the report needs.

    Returns ``(guarded copy, (reasons, choices, removed), detached inputs, dynamic dims)``.
    """
    gm = _as_graph_module(model)
    inputs, dims = _check_inputs(gm, example_inputs)
    isa = isa or detect_isa()
    # int8wo / int4wo / 8da*w linears: lowering/x86/llm; without VNNI each 8da8w linear's token
    # form measured first; small per-token ones timed
    tokens = _run("choose_token_forms", lambda: choose_token_forms(gm, isa, inputs))
    slow = {n: why for n, (form, why) in tokens.items() if form == FORM_FLOAT}
    if payoff:
        slow |= _run("payoff", lambda: _token_payoff(gm, inputs, tokens))
    _run("llm_linears", lambda: apply_llm_pass(gm, llm_compute_dtype, isa, slow, tokens))
    reasons = static_reasons(gm)
    choices = _run("choose_activation_forms", lambda: choose_activation_forms(gm, isa, inputs))
    # Non-uint8 activations: hidden from Inductor's patterns, which assume uint8 (they crash).
    choices += [
        ActivationChoice((), (name,), FORM_FLOAT, why)
        for name, why in reasons.items()
        if "oneDNN's x86 int8 kernels take uint8" in why
    ]
    if payoff:
        choices += _run("payoff", lambda: _payoff(gm, inputs, reasons))
    _run("apply_forms", lambda: apply_forms(gm, choices))
    removed = _run("remove_dangling_qdq", lambda: remove_dangling_qdq(gm, _reads_int8))
    _run("separate_unary_from_binary", lambda: separate_unary_from_binary(gm))
    _run("contiguous_linear_inputs", lambda: contiguous_linear_inputs(gm))
    _run("unfused_conv1d_add", lambda: unfused_conv1d_add(gm))
    _run("clamp_narrow_fused_outputs", lambda: clamp_narrow_fused_outputs(gm))
    return gm, (reasons, choices, removed), inputs, dims


def lower_pt2e_quantized_to_x86(
    model: GraphModule | torch.export.ExportedProgram,
    example_inputs: tuple[Any, ...] | None = None,
    compile: bool = True,
    *,
    mixed_bf16: bool = False,
    isa: CpuInt8Isa | None = None,
    payoff: bool = True,
    llm_compute_dtype: torch.dtype = torch.bfloat16,
    **compile_options: Any,
) -> X86LoweredModule:
    """Lower a converted (reference) program to oneDNN int8 kernels.

    Contract:
      * ``model`` is what ``convert_pt2e`` returns (or an ``ExportedProgram`` of it, e.g. from
        ``torch.export.load``); it is never modified.
      * Returns an :class:`X86LoweredModule`, a ``torch.fx.GraphModule`` whose graph holds the
        ``onednn.qconv_pointwise`` / ``qlinear_pointwise`` ops (3-D linears included) with
        weights prepacked, and a ``LoweringReport`` (``pt2q.lowering.lowering_report(m)``).
      * ``compile=True``: calls are tiered (first call eager, then the same lowering compiled
        ahead of time by AOTInductor with Inductor freezing and loaded in-process, or
        ``torch.compile`` of it for calls that program was not built for, see ``module.py``;
        ``compile_options`` go to ``torch.compile`` and make it the only compiled tier, e.g.
        ``options={"cpp_wrapper": False}``); ``compile=False``: always eager.
      * On CPUs without VNNI, full-range uint8 activations are lowered in the 7-bit or the
        saturating form, whichever measured closer to the reference on ``example_inputs``
        (``pt2q.tolerances.ISA_ADAPTED_MAX_SQNR_LOSS_DB``); with VNNI / AMX, exactly.
        ``isa`` overrides the detected CPU facts (tests, or lowering for another machine).
      * ``payoff=True``: a conv / linear too small to gain from int8 (timed on the example
        inputs, see ``payoff.py``) stays float, with both times in the report.
      * Dimensions exported as ``torch.export.Dim`` stay dynamic.
      * ``mixed_bf16=True`` runs float regions in bfloat16 (autocast).
      * ``llm_compute_dtype``: the activations' dtype at the LLM schemes' weight kernels
        (``pt2q.lowering.x86.llm``): the default bfloat16 is their fast path (within
        ``LLM_WEIGHT_KERNEL_BF16_STEPS``; on VNNI / AMX int8wo runs the integer GEMM,
        ``LLM_INT16_TOKENS_STEPS``); float32 stays within ``LLM_WEIGHT_KERNEL_FP32_STEPS`` on
        torch's scalar float32 kernels.
    """
    require_converted_program(model, "lower_pt2e_quantized_to_x86")
    guarded, (reasons, choices, removed), inputs, dims = prepare_for_inductor(
        model, example_inputs, isa, payoff, llm_compute_dtype
    )
    isa = isa or detect_isa()
    reference = _as_graph_module(model)
    lowered, counters = _run("lower_eagerly", lambda: lower_eagerly(copy_of(guarded), inputs, dims))
    opts = dict(compile_options)
    opts.setdefault("dynamic", None)
    if "mode" not in opts:  # torch.compile takes a mode or options, not both
        opts["options"] = {"cpp_wrapper": True, **opts.get("options", {})}
    # AOTInductor serves unless the caller chose torch.compile's options (module.py)
    aot = not compile_options
    source = compiled_program(guarded) if compile else None
    module = X86LoweredModule(lowered, source, mixed_bf16, opts, dims, aot)
    report = build_report(reference, module, isa, reasons, choices, removed, counters)
    merge_llm_report(report, guarded)
    return attach_report(module, report)  # type: ignore[return-value]


def compiled_program(guarded: GraphModule) -> GraphModule:
    """What the compiled tiers and ``package_x86`` hand Inductor: a copy of ``guarded`` whose
    uint8 max-pools run on the uint8 values (``pools.py``)."""
    program = copy_of(guarded)
    _run("uint8_max_pools", lambda: uint8_max_pools(program))
    return program


def copy_of(gm: GraphModule) -> GraphModule:
    """A new GraphModule over ``gm``'s constants with a copied graph and ``gm.meta`` (pt2q's
    stage and the algorithms' kept-float reasons, which the report quotes)."""
    out = GraphModule(gm, copy.deepcopy(gm.graph), class_name=type(gm).__name__)
    out.meta = copy.deepcopy(gm.meta)
    return out
