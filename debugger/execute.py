"""Running graphs with per-handle recording and per-group substitution.

Everything the debugger measures is one of three runs of an ``fx.Interpreter``:

  * recorded run: run a graph, keep the value of ``out[h]`` for each handle;
  * donor group: evaluate one group of graph B (the nodes between its boundary and ``out[h]``)
    on values taken from graph A's run, e.g. the quantized conv (with its input q/dq and int8
    weight) fed the float model's input;
  * mixed run: run graph A, and at ``out[h]`` of chosen handles replace A's value by B's group
    evaluated on A's values ("only layer h quantized", "only layer h left in float").

Boundary of a donor group (walking back from ``out[h]``): a placeholder (user input, by
position), or ``out[g]`` of another matched handle g; its value comes from the executor's
``out[g]``. Groups thus partition the graph: each q/dq pair belongs to the group whose output it
quantizes (as in pt2e, where a producer's output and its consumers' inputs share one q/dq).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.debugger.groups import GraphGroups
from pt2q.meta import QUANTIZED_OUTPUT_KEY

__all__ = [
    "GroupProgram",
    "record_run",
    "build_group_programs",
    "mixed_run",
    "constant_values",
    "mutates",
    "detach",
]


def constant_values(gm: GraphModule) -> dict[Node, Any]:
    """Values of the nodes computed from constants only (a weight's ``get_attr -> dequantize``),
    evaluated once so that every later run and group evaluation reuses them."""
    interp = torch.fx.Interpreter(gm, garbage_collect_values=False)
    values: dict[Node, Any] = {}
    with torch.no_grad():
        for node in gm.graph.nodes:
            if node.op == "get_attr":
                values[node] = interp.run_node(node)
                interp.env[node] = values[node]
            elif (
                node.op == "call_function"
                and node.all_input_nodes
                and all(i in values for i in node.all_input_nodes)
                and not node.is_impure()
            ):
                values[node] = interp.run_node(node)
                interp.env[node] = values[node]
    return {n: v for n, v in values.items() if n.op == "call_function"}


def detach(x: Any, clone: bool = False) -> Any:
    """``x`` (tensors in lists/tuples/dicts too) detached; copied when ``clone``."""
    if isinstance(x, torch.Tensor):
        return x.detach().clone() if clone else x.detach()
    if isinstance(x, (list, tuple)):
        return type(x)(detach(e, clone) for e in x)
    if isinstance(x, dict):
        return {k: detach(v, clone) for k, v in x.items()}
    return x


def mutates(nodes: Iterable[Node]) -> bool:
    """Whether any of ``nodes`` calls an op that writes one of its inputs (``add_``, ``relu_``):
    a value kept for later (recorded, a boundary, a consumer path input) must then be a copy."""
    return any(
        isinstance(n.target, torch._ops.OpOverload) and n.target._schema.is_mutable for n in nodes
    )


@dataclass
class GroupProgram:
    """The nodes computing ``out[handle]`` of a donor graph from its boundary values."""

    gm: GraphModule
    handle: int
    nodes: list[Node]
    boundary: dict[Node, int]
    inputs: dict[Node, int]
    end: Node

    def _interpreter(self) -> torch.fx.Interpreter:
        interp = getattr(self, "_interp", None)
        if interp is None:
            interp = torch.fx.Interpreter(self.gm, garbage_collect_values=False)
            self._interp = interp
        return interp

    def evaluate(
        self, values: dict[int, Any], flat_inputs: Sequence[Any], consts: dict[Node, Any]
    ) -> Any:
        """Value of ``end`` given boundary handle values, the flat user inputs and the graph's
        ``constant_values``."""
        env: dict[Node, Any] = {}
        copy = getattr(self, "_mutates", None)
        if copy is None:
            copy = self._mutates = mutates(self.nodes)
        for node, h in self.boundary.items():
            if h not in values:
                raise KeyError(
                    f"group of handle {self.handle} (node {self.end.name}) needs the value of "
                    f"handle {h} (node {node.name}), which the executor has not computed"
                )
            env[node] = detach(values[h], copy)
        for node, i in self.inputs.items():
            env[node] = detach(flat_inputs[i], copy)
        interp = self._interpreter()
        interp.env = env
        for node in self.nodes:
            env[node] = consts[node] if node in consts else interp.run_node(node)
        return env[self.end]


def build_group_programs(groups: GraphGroups, handles: Sequence[int]) -> dict[int, GroupProgram]:
    """One ``GroupProgram`` per handle in ``handles`` (see the module docstring for boundaries)."""
    placeholders = [n for n in groups.gm.graph.nodes if n.op == "placeholder"]
    matched = set(handles)
    stop = {groups.out[g]: g for g in matched if g in groups.out}
    order = {n: i for i, n in enumerate(groups.gm.graph.nodes)}
    programs: dict[int, GroupProgram] = {}
    for h in handles:
        end = groups.out[h]
        boundary: dict[Node, int] = {}
        inputs: dict[Node, int] = {}
        seen: set[Node] = set()
        todo = [end]
        while todo:
            node = todo.pop()
            if node in seen:
                continue
            seen.add(node)
            if node.op == "placeholder":
                inputs[node] = placeholders.index(node)
                continue
            if node is not end and node in stop and stop[node] != h:
                boundary[node] = stop[node]
                continue
            todo.extend(node.all_input_nodes)
        nodes = sorted(
            (n for n in seen if n not in boundary and n not in inputs), key=order.__getitem__
        )
        programs[h] = GroupProgram(groups.gm, h, nodes, boundary, inputs, end)
    return programs


def _as_float(n: Node, value: Any) -> Any:
    """A lowered node's integer output, dequantized with the qparams it declares in its meta."""
    qparams = n.meta.get(QUANTIZED_OUTPUT_KEY)
    if qparams is None or not isinstance(value, torch.Tensor) or value.is_floating_point():
        return value
    scale, zero_point = qparams
    return (value.to(torch.float32) - zero_point) * scale


Recorder = Callable[[int, Any], None]


class _Run(torch.fx.Interpreter):
    """Interpreter tracking every ``out[h]`` value, recording some, substituting others.

    A recorded value goes to ``on_record(handle, value)`` when given, else into ``recorded``.
    Nodes in ``consts`` (``constant_values``) are not recomputed.
    """

    def __init__(
        self,
        gm: GraphModule,
        groups: GraphGroups,
        record: set[int],
        on_out: dict[Node, Callable[[_Run, Any], tuple[Any, Any]]],
        consts: dict[Node, Any],
        on_record: Recorder | None = None,
        on_node: dict[Node, Callable[[_Run, Any], None]] | None = None,
    ) -> None:
        super().__init__(gm)
        self.track = {node: h for h, node in groups.out.items()}
        self.record = record
        self.on_out = on_out
        self.consts = consts
        self.on_record = on_record
        self.on_node = on_node or {}
        self.recorded: dict[int, Any] = {}
        self.values: dict[int, Any] = {}
        self.snapshot = mutates(gm.graph.nodes)  # in-place ops: keep copies, not aliases
        self.flat_inputs: list[Any] = []

    def run_node(self, n: Node) -> Any:
        value = self.consts[n] if n in self.consts else super().run_node(n)
        if n.op == "placeholder":
            self.flat_inputs.append(value)
        shown = value
        if n in self.on_out:
            value, shown = self.on_out[n](self, value)
        handle = self.track.get(n)
        if handle is not None:
            kept = detach(value, self.snapshot)
            self.values[handle] = kept
            if handle in self.record:
                shown = kept if shown is value else shown
                shown = detach(_as_float(n, shown), self.snapshot and shown is not kept)
                if self.on_record is not None:
                    self.on_record(handle, shown)
                else:
                    self.recorded[handle] = shown
        if n in self.on_node:
            self.on_node[n](self, value)
        return value


def record_run(
    gm: GraphModule,
    groups: GraphGroups,
    args: Sequence[Any],
    handles: Sequence[int],
    consts: dict[Node, Any],
    on_record: Recorder | None = None,
) -> tuple[Any, dict[int, Any]]:
    """Run ``gm`` on ``args``; return (output, {handle: value at out[handle]}) (the dict stays
    empty when ``on_record`` consumes the values as they come)."""
    run = _Run(gm, groups, set(handles), {}, consts, on_record)
    with torch.no_grad():
        output = run.run(*args)
    return detach(output), run.recorded


def mixed_run(
    gm: GraphModule,
    groups: GraphGroups,
    args: Sequence[Any],
    handles: Sequence[int],
    donors: dict[int, GroupProgram],
    replace: bool,
    consts: dict[Node, Any],
    donor_consts: dict[Node, Any],
    on_record: Recorder | None = None,
    on_node: dict[Node, Callable[[_Run, Any], None]] | None = None,
) -> tuple[Any, dict[int, Any]]:
    """Run ``gm``; at ``out[h]`` for each donor h evaluate the donor group on this run's values.

    With ``replace`` the donor value flows downstream (a mixed model); without, the run stays
    ``gm``'s own and the donor value is only recorded (isolated error). Returns (output,
    {handle: recorded value}); donor handles record the donor value. ``on_node[n](run, value)``
    is called after node ``n`` ran (the isolated-through-consumer evaluation hooks in there).
    """

    def substitute(h: int) -> Callable[[_Run, Any], tuple[Any, Any]]:
        def fn(run: _Run, own: Any) -> tuple[Any, Any]:
            donor = donors[h].evaluate(run.values, run.flat_inputs, donor_consts)
            return (donor if replace else own), donor

        return fn

    on_out = {groups.out[h]: substitute(h) for h in donors}
    run = _Run(gm, groups, set(handles), on_out, consts, on_record, on_node)
    with torch.no_grad():
        output = run.run(*args)
    return detach(output), run.recorded
