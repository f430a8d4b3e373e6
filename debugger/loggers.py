"""torchao-compatible logger API: ``prepare_for_propagation_comparison`` and
``extract_results_from_loggers``.

No handle step is needed: a model without structural handles gets handles derived from its
``node.meta["from_node"]`` provenance (``pt2q.debugger.provenance``), and its results are keyed by
``NodeSourceDebugInfo`` exactly as torchao 0.18 keys them. A model whose float program went
through ``generate_numeric_debug_handle`` is keyed by those int handles (the stronger option: they
survive separate exports, save/load and re-export).

Unlike torchao, one logger is inserted per *handle* (not per node carrying it), at the group's
value (``GraphGroups.out``: after the output q/dq of a quantized op, the last node of a
decomposition), and each logger remembers the handle of its single consumer, so
``compare_results`` can compare a folded conv against the float conv->bn output without seeing
the graphs.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.debugger.groups import GraphGroups
from pt2q.debugger.handles import get_handle, module_path, source_line
from pt2q.debugger.provenance import NodeSourceDebugInfo, has_structural_handles, with_handles

__all__ = [
    "OutputLogger",
    "LoggedResult",
    "ResultKey",
    "prepare_for_propagation_comparison",
    "extract_results_from_loggers",
]

# A result key: an int structural handle, or torchao's NodeSourceDebugInfo (provenance).
ResultKey = int | NodeSourceDebugInfo


def _detach(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, (list, tuple)):
        return type(x)(_detach(e) for e in x)
    if isinstance(x, dict):
        return {k: _detach(v) for k, v in x.items()}
    return x


class OutputLogger(torch.nn.Module):
    """Records (detached) every value that flows through it; the identity otherwise.

    ``debug_info`` is the provenance key (torchao's field), ``debug_handle`` pt2q's int handle;
    ``by_provenance`` says which one keys the extracted results.
    """

    _is_impure = True  # keep it through dead-code elimination

    def __init__(
        self,
        debug_handle: int,
        node_name: str | None = None,
        nn_module_stack: object | None = None,
        next_handle: int | None = None,
        source: str = "",
        module_path: str = "",
        debug_info: NodeSourceDebugInfo | None = None,
        by_provenance: bool = False,
    ) -> None:
        super().__init__()
        self.debug_handle = debug_handle
        self.debug_info = debug_info
        self.by_provenance = by_provenance
        self.module_path = module_path
        self.node_name = node_name
        self.nn_module_stack = nn_module_stack
        self.next_handle = next_handle
        self.source = source
        self.stats: list[Any] = []

    @property
    def key(self) -> ResultKey:
        """The key of this logger's results (see the class docstring)."""
        if self.by_provenance and self.debug_info is not None:
            return self.debug_info
        return self.debug_handle

    def forward(self, x: Any) -> Any:
        self.stats.append(_detach(x))
        return x

    def extra_repr(self) -> str:
        return f"key={self.key}, node_name={self.node_name}, num_stats={len(self.stats)}"


class LoggedResult(tuple):
    """``(node_name, nn_module_stack, stats)`` as in torchao, plus the fields the groups need.

    Unpacks as the torchao 3-tuple; ``next_handle`` is the int handle of the single consumer of
    the logged value (None when it has several or none), ``debug_handle`` / ``debug_info`` both
    identities of the logged node, ``module_path`` and ``source`` locate it.
    """

    next_handle: int | None
    module_path: str
    source: str
    debug_handle: int | None
    debug_info: NodeSourceDebugInfo | None

    def __new__(
        cls,
        node_name: str | None,
        nn_module_stack: object,
        stats: list[Any],
        next_handle: int | None = None,
        module_path: str = "",
        source: str = "",
        debug_handle: int | None = None,
        debug_info: NodeSourceDebugInfo | None = None,
    ) -> LoggedResult:
        self = super().__new__(cls, (node_name, nn_module_stack, stats))
        self.next_handle = next_handle
        self.module_path = module_path
        self.source = source
        self.debug_handle = debug_handle
        self.debug_info = debug_info
        return self


def _single_consumer_handle(node: Node) -> int | None:
    users = list(node.users)
    if len(users) != 1 or users[0].op == "output":
        return None
    return get_handle(users[0])


def prepare_for_propagation_comparison(model: GraphModule) -> GraphModule:
    """A copy of ``model`` with an ``OutputLogger`` after the value of each handle's group.

    Handles: the structural ones when the model carries them, else derived from ``from_node``
    provenance. Raises ValueError when the model has neither (a hand-built graph).
    """
    if not isinstance(model, GraphModule):
        raise TypeError(
            "prepare_for_propagation_comparison: expected a torch.fx.GraphModule "
            f"(ep.module(), prepare_pt2e/convert_pt2e output), got {type(model).__name__}"
        )
    model = copy.deepcopy(model)
    structural = has_structural_handles(model)
    model, infos = with_handles(model, structural, in_place=True)
    groups = GraphGroups.build(model)
    if not groups.rep:
        raise ValueError(
            "prepare_for_propagation_comparison: no node of the model carries a numeric debug "
            "handle or from_node provenance; pass ep.module() or a model prepared/converted "
            "from it, or call generate_numeric_debug_handle(exported_program) first"
        )
    for handle, node in groups.out.items():
        rep = groups.rep[handle]
        logger = OutputLogger(
            handle,
            rep.name,
            rep.meta.get("nn_module_stack"),
            _single_consumer_handle(node),
            source_line(rep),
            module_path(rep),
            infos.get(handle),
            not structural,
        )
        name = f"{rep.name}_logger"
        i = 0
        while hasattr(model, name):
            i += 1
            name = f"{rep.name}_logger_{i}"
        model.add_module(name, logger)
        users = list(node.users)
        with model.graph.inserting_after(node):
            logged = model.graph.call_module(name, (node,))
        for user in users:
            user.replace_input_with(node, logged)
    model.recompile()
    return model


def extract_results_from_loggers(model: GraphModule) -> dict[ResultKey, LoggedResult]:
    """{key: (node_name, nn_module_stack, stats)} for every logger that saw a value.

    Keys are ``NodeSourceDebugInfo`` (provenance, as torchao) or int structural handles.
    """
    results: dict[ResultKey, LoggedResult] = {}
    for module in model.modules():
        if isinstance(module, OutputLogger) and module.stats:
            results[module.key] = LoggedResult(
                module.node_name,
                module.nn_module_stack,
                module.stats,
                module.next_handle,
                module.module_path,
                module.source,
                module.debug_handle,
                module.debug_info,
            )
    return results
