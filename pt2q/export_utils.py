"""Train/eval switching for exported models (``model.eval()`` does not work on them).

``torch.export`` bakes the train/eval behaviour of dropout and batch norm into the graph as a
boolean argument of the aten op::

    batch_norm.default(x, w, b, running_mean, running_var, training, momentum, eps, cudnn)
    dropout.default(x, p, train)

Switching mode flips that flag **in place** (also for the in-place ``dropout_`` forms) and touches nothing else, so batch-norm ``eps`` /
``momentum`` and dropout ``p`` stay exactly what the user exported (torchao re-traces default
patterns and resets them to 1e-5 / 0.1 / 0.5). The ops handled are the rows of ``_TRAIN_FLAG``
(flag flip) and ``_EVAL_ONLY_TO_TRAIN`` (eval-only op swapped for its train twin); ops without
running statistics (``track_running_stats=False``) always use batch statistics and are left as
they are, like ``nn.BatchNorm`` does.

``num_batches_tracked`` follows the float module too: its ``add_(num_batches_tracked, 1)`` is
dropped in eval mode and put back (after its buffer's ``get_attr``) in train mode.

Not handled: the functional batch norm of a decomposed graph (``run_decompositions``), whose
running statistics are written back by separate ``copy_`` nodes; switching it raises. Dropout
in eval mode of a decomposed graph is a plain ``clone`` and cannot be switched back (its ``p``
is gone), so it is left alone.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.fx import GraphModule, Node

__all__ = [
    "WrapperModule",
    "model_is_exported",
    "move_exported_model_to_eval",
    "move_exported_model_to_train",
    "allow_exported_model_train_eval",
    "disallow_exported_model_train_eval",
]

aten = torch.ops.aten


@dataclass(frozen=True)
class _TrainFlag:
    """Where an op keeps its train/eval flag, and whether it needs running stats to go eval."""

    index: int
    name: str
    running_mean_index: int | None = None  # batch norm: eval needs running statistics


# Ops whose train/eval behaviour is one boolean argument; switching flips it.
_TRAIN_FLAG: dict[torch._ops.OpOverload, _TrainFlag] = {
    aten.dropout.default: _TrainFlag(2, "train"),
    aten.feature_dropout.default: _TrainFlag(2, "train"),
    aten.alpha_dropout.default: _TrainFlag(2, "train"),
    aten.feature_alpha_dropout.default: _TrainFlag(2, "train"),
    aten.native_dropout.default: _TrainFlag(2, "train"),
    # in-place forms (F.dropout(..., inplace=True)), same flag position
    aten.dropout_.default: _TrainFlag(2, "train"),
    aten.feature_dropout_.default: _TrainFlag(2, "train"),
    aten.alpha_dropout_.default: _TrainFlag(2, "train"),
    aten.feature_alpha_dropout_.default: _TrainFlag(2, "train"),
    aten.batch_norm.default: _TrainFlag(5, "training", running_mean_index=3),
    aten.native_batch_norm.default: _TrainFlag(5, "training", running_mean_index=3),
    aten._native_batch_norm_legit.default: _TrainFlag(5, "training", running_mean_index=3),
}

# Eval-only ops (no flag) -> their train twin; the flag is inserted at index 5:
#   _native_batch_norm_legit_no_training(x, w, b, rm, rv, momentum, eps)
#   -> _native_batch_norm_legit(x, w, b, rm, rv, True, momentum, eps)
_EVAL_ONLY_TO_TRAIN: dict[torch._ops.OpOverload, torch._ops.OpOverload] = {
    aten._native_batch_norm_legit_no_training.default: aten._native_batch_norm_legit.default,
}

# Ops that cannot be switched in place (their running-stat updates live in other nodes).
_UNSUPPORTED = (aten._native_batch_norm_legit_functional.default,)

_NUM_BATCHES_TRACKED = "num_batches_tracked"


def _get_flag(node: Node, flag: _TrainFlag) -> object:
    if len(node.args) > flag.index:
        return node.args[flag.index]
    return node.kwargs.get(flag.name)


def _set_flag(node: Node, flag: _TrainFlag, value: bool) -> None:
    if len(node.args) > flag.index:
        args = list(node.args)
        args[flag.index] = value
        node.args = tuple(args)
    else:
        node.kwargs = {**node.kwargs, flag.name: value}


def _has_running_stats(node: Node, flag: _TrainFlag) -> bool:
    if flag.running_mean_index is None:
        return True
    if len(node.args) > flag.running_mean_index:
        return node.args[flag.running_mean_index] is not None
    return node.kwargs.get("running_mean") is not None


def _is_nbt_increment(node: Node) -> bool:
    """``add_(<get_attr ...num_batches_tracked>, 1)`` whose result nobody reads."""
    return (
        node.op == "call_function"
        and node.target == aten.add_.Tensor
        and isinstance(node.args[0], Node)
        and node.args[0].op == "get_attr"
        and str(node.args[0].target).endswith(_NUM_BATCHES_TRACKED)
        and len(node.users) == 0
    )


def _bn_prefixes(gm: GraphModule) -> set[str]:
    """Module prefixes ("layer1.bn.") of batch norms in the graph with running stats."""
    prefixes = set()
    for node in gm.graph.nodes:
        flag = _TRAIN_FLAG.get(node.target)
        is_bn = flag is not None and flag.running_mean_index is not None
        if not is_bn and node.target not in _EVAL_ONLY_TO_TRAIN:
            continue
        rm = node.args[3] if len(node.args) > 3 else None
        if isinstance(rm, Node) and rm.op == "get_attr":
            prefixes.add(str(rm.target).rsplit("running_mean", 1)[0])
    return prefixes


def _check_supported(gm: GraphModule) -> None:
    for node in gm.graph.nodes:
        if node.op == "call_function" and node.target in _UNSUPPORTED:
            raise NotImplementedError(
                f"train/eval switching: node '{node.name}' is {node.target}, the functional batch "
                "norm of a decomposed graph; expected the graph of torch.export.export(...) "
                "before run_decompositions (aten.batch_norm.default), found the decomposed form"
            )


def _set_module_flags(gm: GraphModule, mode: bool) -> None:
    # Not gm.train(mode): allow_exported_model_train_eval may have rebound it to call us.
    for module in gm.modules():
        module.training = mode


def _switch(gm: GraphModule, train: bool) -> GraphModule:
    if not isinstance(gm, GraphModule):
        raise TypeError(
            "train/eval switching expects the torch.fx.GraphModule of "
            f"torch.export.export(...).module() (or of prepare_pt2e), got {type(gm).__name__}"
        )
    _check_supported(gm)
    graph = gm.graph
    changed = False
    bn_prefixes = _bn_prefixes(gm)
    for node in list(graph.nodes):
        if node.op != "call_function":
            continue
        flag = _TRAIN_FLAG.get(node.target)
        if flag is not None:
            if not _has_running_stats(node, flag):
                continue  # no running stats: batch statistics in both modes
            if _get_flag(node, flag) is not train:
                _set_flag(node, flag, train)
                changed = True
        elif train and node.target in _EVAL_ONLY_TO_TRAIN:
            node.target = _EVAL_ONLY_TO_TRAIN[node.target]
            node.args = (*node.args[:5], True, *node.args[5:])
            changed = True
        elif not train and _is_nbt_increment(node):
            graph.erase_node(node)
            changed = True
    if train:
        changed |= _restore_nbt_increments(gm, bn_prefixes)
    if changed:
        graph.lint()
        gm.recompile()
    _set_module_flags(gm, train)
    return gm


def _restore_nbt_increments(gm: GraphModule, bn_prefixes: set[str]) -> bool:
    """Insert ``add_(num_batches_tracked, 1)`` for each batch norm of the graph that lacks it."""
    changed = False
    for node in list(gm.graph.nodes):
        if node.op != "get_attr" or not str(node.target).endswith(_NUM_BATCHES_TRACKED):
            continue
        prefix = str(node.target)[: -len(_NUM_BATCHES_TRACKED)]
        if prefix not in bn_prefixes or any(_is_nbt_increment(u) for u in node.users):
            continue
        with gm.graph.inserting_after(node):
            add = gm.graph.call_function(aten.add_.Tensor, (node, 1))
        add.meta.update({k: v for k, v in node.meta.items() if k != "val"})
        changed = True
    return changed


def move_exported_model_to_eval(model: GraphModule) -> GraphModule:
    """Switch dropout and batch norm of an exported model to eval behaviour, in place.

    Keeps every other argument (dropout ``p``, batch-norm ``eps`` / ``momentum``) exactly as in
    the graph. Idempotent. Returns ``model``.
    """
    return _switch(model, train=False)


def move_exported_model_to_train(model: GraphModule) -> GraphModule:
    """Switch dropout and batch norm of an exported model to train behaviour, in place.

    Keeps every other argument (dropout ``p``, batch-norm ``eps`` / ``momentum``) exactly as in
    the graph; batch norm updates its running stats and ``num_batches_tracked`` as the float
    module does. Idempotent. Returns ``model``.
    """
    return _switch(model, train=True)


def allow_exported_model_train_eval(model: GraphModule) -> GraphModule:
    """Make ``model.train()`` / ``model.eval()`` call the two functions above. Returns ``model``.

    ``model.train(False)`` is ``model.eval()``, as for ``nn.Module``.
    """

    def _train(self: GraphModule, mode: bool = True) -> GraphModule:
        return _switch(self, train=bool(mode))

    def _eval(self: GraphModule) -> GraphModule:
        return _switch(self, train=False)

    model.train = types.MethodType(_train, model)  # type: ignore[method-assign]
    model.eval = types.MethodType(_eval, model)  # type: ignore[method-assign]
    return model


_TRAIN_EVAL_MESSAGE = (
    "Calling {call} on an exported (prepared / converted) model is not supported: it would not "
    "switch dropout or batch norm in the graph. Call pt2q.move_exported_model_to_train(model) "
    "or pt2q.move_exported_model_to_eval(model) instead, or pt2q."
    "allow_exported_model_train_eval(model) once to make train()/eval() do that."
)


def disallow_exported_model_train_eval(model: GraphModule) -> GraphModule:
    """Make ``model.train()`` / ``model.eval()`` raise ``NotImplementedError`` (as torch does
    on ``torch.export.export(...).module()``); prepare and convert put this guard on what they
    return. ``allow_exported_model_train_eval`` lifts it. Returns ``model``."""

    def _train(self: GraphModule, mode: bool = True) -> GraphModule:
        raise NotImplementedError(_TRAIN_EVAL_MESSAGE.format(call=f"train({mode})"))

    def _eval(self: GraphModule) -> GraphModule:
        raise NotImplementedError(_TRAIN_EVAL_MESSAGE.format(call="eval()"))

    model.train = types.MethodType(_train, model)  # type: ignore[method-assign]
    model.eval = types.MethodType(_eval, model)  # type: ignore[method-assign]
    return model


def model_is_exported(m: torch.nn.Module) -> bool:
    """True if ``m`` is a GraphModule produced by ``torch.export`` (its nodes carry ``val``
    metadata), False for a symbolically traced or eager module."""
    return isinstance(m, GraphModule) and any("val" in n.meta for n in m.graph.nodes)


class WrapperModule(torch.nn.Module):
    """An ``nn.Module`` whose forward calls ``fn``: lets a plain function be exported."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Return ``fn(*args, **kwargs)``."""
        return self.fn(*args, **kwargs)
