"""The public flow: ``prepare_pt2e`` / ``prepare_qat_pt2e`` / ``convert_pt2e``.

Same names and signatures as ``torchao.quantization.pt2e.quantize_pt2e``. Differences, on
purpose: prepare works on a copy (the user's exported model is never mutated), convert refuses
activation observers that never saw data instead of writing default qparams, and every error
names the node or argument at fault. Each function is a straight list of named passes.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch.fx import GraphModule

from pt2q.convert.calibration import check_calibrated, observe_constants
from pt2q.convert.fold import fold_constant_quantize
from pt2q.convert.health_check import check_observer_health
from pt2q.convert.qdq import replace_observers_with_qdq
from pt2q.convert.reference_representation import reference_representation_rewrite
from pt2q.errors import CalibrationError, NotPreparedError
from pt2q.export_utils import disallow_exported_model_train_eval
from pt2q.graph_utils import control_flow_subgraphs
from pt2q.passes.fold_bn import fold_bn_into_preceding_op
from pt2q.pipeline import run_pass
from pt2q.prepare.checks import require_exported_graph_module
from pt2q.prepare.groups import plan_sharing
from pt2q.prepare.insert import insert_observers
from pt2q.prepare.observers import create_observers
from pt2q.prepare.reuse_input import resolve_reuse_input
from pt2q.qat import fold_conv_bn_qat, fuse_conv_bn_qat
from pt2q.qdq.meta import PT2Q_META_KEY
from pt2q.quantizer.quantizer import Quantizer

__all__ = ["prepare_pt2e", "prepare_qat_pt2e", "convert_pt2e", "PT2Q_META_KEY"]

# Control-flow ops whose bodies torch traces (fake tensors) when run under autograd.
_TRACED_UNDER_AUTOGRAD = (torch.ops.higher_order.scan, torch.ops.higher_order.while_loop)

# model.meta[PT2Q_META_KEY]: {"stage": "prepared" | "converted", "is_qat": bool,
#                             "observers": {module name: [described keys]},
#                             "health": {observed node name: pt2q.health.Health} (after convert)}


def _copy_for_prepare(model: GraphModule, is_qat: bool) -> GraphModule:
    """A copy whose graph, submodules and buffers are the prepared model's own.

    For PTQ the float parameters are shared, not cloned: nothing in prepare, calibration or
    convert writes into them (folding and quantization make new tensors), and cloning every
    weight was most of prepare's time. QAT trains the parameters, so it clones them too.
    """
    memo: dict[int, object] = {}
    if not is_qat:
        memo = {id(p): p for p in model.parameters()}
    # A tensor with autograd history (e.g. transformers' static KV cache, written by index_copy_
    # while gradients were on) refuses deepcopy; its copy is its value: detached, so a leaf,
    # still sharing storage with the other copies that alias it. The user's tensor is untouched.
    for module in model.modules():
        for value in [*module._buffers.values(), *vars(module).values()]:
            if isinstance(value, torch.Tensor) and not value.is_leaf and id(value) not in memo:
                memo[id(value)] = copy.deepcopy(value.detach(), memo)
    return copy.deepcopy(model, memo)


def _prepare(model: GraphModule, quantizer: Quantizer, is_qat: bool) -> GraphModule:
    api = "prepare_qat_pt2e" if is_qat else "prepare_pt2e"
    require_exported_graph_module(model, api)
    if not isinstance(quantizer, Quantizer):
        raise TypeError(
            f"{api}: quantizer must be a pt2q.quantizer.Quantizer subclass instance, "
            f"got {type(quantizer).__name__}"
        )
    if model.meta.get(PT2Q_META_KEY, {}).get("stage") is not None:
        stage = model.meta[PT2Q_META_KEY]["stage"]
        raise NotPreparedError(f"{api}: the model is already {stage}; pass the exported model")
    model = _copy_for_prepare(model, is_qat)
    if not is_qat:
        run_pass(api, "fold_bn_into_preceding_op", fold_bn_into_preceding_op, model)
    model = run_pass(api, "transform_for_annotation", quantizer.transform_for_annotation, model)
    run_pass(api, "annotate", quantizer.annotate, model)
    run_pass(api, "validate", quantizer.validate, model)
    run_pass(api, "resolve_reuse_input", resolve_reuse_input, model)
    if is_qat:
        run_pass(api, "fuse_conv_bn_qat", fuse_conv_bn_qat, model)
    plan = run_pass(api, "plan_sharing", plan_sharing, model)
    obs_of = run_pass(api, "create_observers", create_observers, plan, is_qat)
    run_pass(api, "prepare_obs_or_fq_callback", quantizer.prepare_obs_or_fq_callback, model, obs_of)
    served = run_pass(api, "insert_observers", insert_observers, model, plan, obs_of, is_qat)
    model.meta[PT2Q_META_KEY] = {
        "stage": "prepared",
        "is_qat": is_qat,
        "observers": {name: [str(k) for k in keys] for name, keys in served.items()},
    }
    # cond branches, scan / map bodies, while_loop body: each is prepared as a graph of its own
    for attr, subgraph, node in control_flow_subgraphs(model):
        if is_qat and node.target in _TRACED_UNDER_AUTOGRAD:
            warnings.warn(
                f"{api}: '{attr}', the body of {node.target} node '{node.name}', stays float: "
                "with gradients on, torch runs it as a traced copy in which fake-quantizers "
                "cannot update (quantize it with prepare_pt2e after training instead)",
                stacklevel=3,
            )
            continue
        setattr(model, attr, _prepare(subgraph, quantizer, is_qat))
    return disallow_exported_model_train_eval(model)


def prepare_pt2e(model: GraphModule, quantizer: Quantizer) -> GraphModule:
    """Annotate ``model`` with ``quantizer`` and insert observers; returns a new GraphModule.

    ``model`` must come from ``torch.export.export(m, args).module()``. Batch norms following
    conv/linear are folded first. The sub-graphs of control flow (``cond`` branches, ``scan`` /
    ``map`` bodies, ``while_loop`` body) are annotated and observed too. Run calibration data
    through the result, then convert_pt2e. Like torch's exported modules, the result's
    ``train()`` / ``eval()`` raise (see ``allow_exported_model_train_eval``).
    """
    return _prepare(model, quantizer, is_qat=False)


def prepare_qat_pt2e(model: GraphModule, quantizer: Quantizer) -> GraphModule:
    """Like prepare_pt2e with fake-quantizers for training; conv+bn become the simulated-fusion
    training form. Export the model in train mode."""
    return _prepare(model, quantizer, is_qat=True)


def _convert_subgraphs(model: GraphModule, use_reference: bool, fold_quantize: bool) -> None:
    """Convert each control-flow sub-graph prepare observed (see ``prepare_pt2e``)."""
    for attr, subgraph, node in control_flow_subgraphs(model):
        try:
            convert_pt2e(subgraph, use_reference, fold_quantize)
        except CalibrationError as e:
            raise CalibrationError(
                f"{e}\nThese observers are in '{attr}', a sub-graph of control-flow node "
                f"'{node.name}' ({node.target}). A cond branch sees data only when taken; "
                "scan / while_loop bodies run as traced copies while gradients are on, so "
                "calibrate under torch.no_grad()."
            ) from e


def convert_pt2e(
    model: GraphModule,
    use_reference_representation: bool = False,
    fold_quantize: bool = True,
) -> GraphModule:
    """Replace observers with ``quantized_decomposed`` q/dq ops (in place, like torchao).

    With ``fold_quantize`` the quantization of weights is computed now and stored as int8
    constants, so only their dequantize stays in the graph. With
    ``use_reference_representation`` the q/dq patterns (linear, conv2d, add, max_pool2d, the
    remaining q/dq) are then rewritten into explicit integer arithmetic on aten ops.

    Every activation observer's quantization health (``pt2q.health``) is checked first: a
    ``QuantizationHealthWarning`` names the nodes whose range is dominated by outliers or
    collapses their values, and ``model.meta["pt2q"]["health"]`` keeps all of them by node name.
    """
    api = "convert_pt2e"
    require_exported_graph_module(model, api)
    info = model.meta.get(PT2Q_META_KEY, {})
    if info.get("stage") != "prepared":
        found = info.get("stage", "not prepared by pt2q")
        raise NotPreparedError(
            f"{api} expects a model returned by prepare_pt2e / prepare_qat_pt2e and calibrated; "
            f"this one is {found}"
        )
    _convert_subgraphs(model, use_reference_representation, fold_quantize)
    if info.get("is_qat"):
        run_pass(api, "fold_conv_bn_qat", fold_conv_bn_qat, model)
    run_pass(api, "observe_constants", observe_constants, model)
    run_pass(api, "check_calibrated", check_calibrated, model)
    info["health"] = run_pass(api, "check_observer_health", check_observer_health, model)
    run_pass(api, "replace_observers_with_qdq", replace_observers_with_qdq, model)
    if fold_quantize:
        run_pass(api, "fold_constant_quantize", fold_constant_quantize, model)
    if use_reference_representation:
        run_pass(api, "reference_representation", reference_representation_rewrite, model)
    model.graph.lint()
    model.recompile()
    info["stage"] = "converted"
    return disallow_exported_model_train_eval(model)
