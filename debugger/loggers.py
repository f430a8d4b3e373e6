"""torchao-compatible logger API: ``prepare_for_propagation_comparison`` and
``extract_results_from_loggers``.

Unlike torchao, one logger is inserted per *handle* (not per node carrying it), at the group's
value (``GraphGroups.out``: after the output q/dq of a quantized op, the last node of a
decomposition), and each logger remembers the handle of its single consumer, so ``compare_results`` can compare a folded conv against the float conv->bn
output without seeing the graphs.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.debugger.groups import GraphGroups
from pt2q.debugger.handles import get_handle, module_path, source_line

__all__ = [
    "OutputLogger",
    "LoggedResult",
    "prepare_for_propagation_comparison",
    "extract_results_from_loggers",
]


def _detach(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, (list, tuple)):
        return type(x)(_detach(e) for e in x)
    if isinstance(x, dict):
        return {k: _detach(v) for k, v in x.items()}
    return x


class OutputLogger(torch.nn.Module):
    """Records (detached) every value that flows through it; the identity otherwise."""

    _is_impure = True  # keep it through dead-code elimination

    def __init__(
        self,
        debug_handle: int,
        node_name: str | None = None,
        nn_module_stack: object | None = None,
        next_handle: int | None = None,
        source: str = "",
        module_path: str = "",
    ) -> None:
        super().__init__()
        self.debug_handle = debug_handle
        self.module_path = module_path
        self.node_name = node_name
        self.nn_module_stack = nn_module_stack
        self.next_handle = next_handle
        self.source = source
        self.stats: list[Any] = []

    def forward(self, x: Any) -> Any:
        self.stats.append(_detach(x))
        return x

    def extra_repr(self) -> str:
        return (
            f"debug_handle={self.debug_handle}, node_name={self.node_name}, "
            f"num_stats={len(self.stats)}"
        )


class LoggedResult(tuple):
    """``(node_name, nn_module_stack, stats)`` as in torchao, plus the fields the groups need.

    Unpacks as the torchao 3-tuple; ``next_handle`` is the handle of the single consumer of the
    logged value (None when it has several or none), ``module_path`` and ``source`` locate it.
    """

    next_handle: int | None
    module_path: str
    source: str

    def __new__(
        cls,
        node_name: str | None,
        nn_module_stack: object,
        stats: list[Any],
        next_handle: int | None = None,
        module_path: str = "",
        source: str = "",
    ) -> LoggedResult:
        self = super().__new__(cls, (node_name, nn_module_stack, stats))
        self.next_handle = next_handle
        self.module_path = module_path
        self.source = source
        return self


def _single_consumer_handle(node: Node) -> int | None:
    users = list(node.users)
    if len(users) != 1 or users[0].op == "output":
        return None
    return get_handle(users[0])


def prepare_for_propagation_comparison(model: GraphModule) -> GraphModule:
    """A copy of ``model`` with an ``OutputLogger`` after the value of each handle's group.

    Raises ValueError when ``model`` carries no handle at all (call
    ``generate_numeric_debug_handle`` on the float program before quantizing).
    """
    model = copy.deepcopy(model)
    groups = GraphGroups.build(model)
    if not groups.rep:
        raise ValueError(
            "prepare_for_propagation_comparison: no node of the model carries a "
            "numeric debug handle; call generate_numeric_debug_handle(exported_program) "
            "on the float program before prepare_pt2e"
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


def extract_results_from_loggers(model: GraphModule) -> dict[int, LoggedResult]:
    """{handle: (node_name, nn_module_stack, stats)} for every logger that saw a value."""
    results: dict[int, LoggedResult] = {}
    for module in model.modules():
        if isinstance(module, OutputLogger) and module.stats:
            results[module.debug_handle] = LoggedResult(
                module.node_name,
                module.nn_module_stack,
                module.stats,
                module.next_handle,
                module.module_path,
                module.source,
            )
    return results
