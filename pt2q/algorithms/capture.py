"""Record what flows into / out of chosen nodes while calibration batches run.

A copy of the module gets one recorder ``call_module`` node after each watched value (and loses
its observers, if it is a prepared model); the copy runs the batches and is dropped, so the module given is unchanged. ``reduce`` turns each
observed tensor into what is kept (a per-channel statistic, or a subsample for fitting);
``SecondMoment`` is a reducer that keeps one running sum instead of one result per batch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.algorithms.batches import Batch, call
from pt2q.convert.qdq import observer_of

__all__ = ["SecondMoment", "float_outputs", "record", "strip_observers"]


class SecondMoment:
    """Reducer keeping ``E[x^T x]`` over the rows (last dimension) of every tensor seen, as one
    (K, K) float64 running sum: memory does not grow with the number of batches."""

    def __init__(self) -> None:
        self.sum: torch.Tensor | None = None
        self.rows = 0

    def __call__(self, x: torch.Tensor) -> None:
        rows = x.reshape(-1, x.shape[-1]).double()
        self.sum = rows.t() @ rows + (0 if self.sum is None else self.sum)
        self.rows += rows.shape[0]

    def mean(self) -> torch.Tensor:
        assert self.sum is not None, "no batch reached this value"
        return self.sum / max(1, self.rows)


class _Recorder(torch.nn.Module):
    def __init__(self, reduce: Callable[[torch.Tensor], Any]) -> None:
        super().__init__()
        self.reduce = reduce
        self.kept: list[Any] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.kept.append(self.reduce(x.detach()))
        return x


def strip_observers(gm: GraphModule, which: Callable[[Node], bool] | None = None) -> None:
    """Remove every observer / fake-quantize node of ``gm`` (or those ``which`` selects) in place
    (their users read the observed value): with all gone, what is left is the prepared model's
    float graph. Not recompiled."""
    for node in list(gm.graph.nodes):
        if observer_of(gm, node) is not None and (which is None or which(node)):
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)


def float_outputs(prepared: GraphModule, batches: Sequence[Batch]) -> list[Any]:
    """The outputs of ``prepared`` with every observer bypassed (its float graph), computed on a
    copy so the observers see nothing more."""
    model = copy.deepcopy(prepared)
    strip_observers(model)
    model.recompile()
    return [call(model, b) for b in batches]


def record(
    gm: GraphModule,
    batches: Sequence[Batch],
    values: dict[str, tuple[str, int | None]],
    reduce: Callable[[torch.Tensor], Any] | dict[str, Callable[[torch.Tensor], Any]],
) -> dict[str, list[Any]]:
    """Run ``batches`` through a copy of ``gm`` and keep ``reduce(tensor)`` per batch for each
    entry of ``values``: key -> (node name, input index, or None for the node's output).
    ``reduce`` may be one function for all keys or one per key."""
    memo: dict[int, torch.Tensor] = {id(p): p for p in gm.parameters()}
    memo.update({id(b): b for b in gm.buffers()})
    copy_gm = copy.deepcopy(gm, memo)  # the graph is copied, the tensors are shared (read only)
    strip_observers(copy_gm)  # observers of a prepared model: not needed here
    nodes = {n.name: n for n in copy_gm.graph.nodes}
    recorders: dict[str, _Recorder] = {}
    for key, (name, index) in values.items():
        node = nodes[name]
        rec = _Recorder(reduce[key] if isinstance(reduce, dict) else reduce)
        attr = f"_pt2q_recorder_{len(recorders)}"
        copy_gm.add_module(attr, rec)
        recorders[key] = rec
        if index is None:
            with copy_gm.graph.inserting_after(node):
                new = copy_gm.graph.call_module(attr, (node,))
            for user in list(node.users):
                if user is not new:
                    user.replace_input_with(node, new)
        else:
            src = node.args[index]
            assert isinstance(src, Node), f"input {index} of '{name}' is not a node"
            with copy_gm.graph.inserting_before(node):
                new = copy_gm.graph.call_module(attr, (src,))
            node.update_arg(index, new)
    copy_gm.recompile()
    for batch in batches:
        call(copy_gm, batch)
    return {key: rec.kept for key, rec in recorders.items()}
