"""Isolated error measured at a node's first non-linear consumer.

A quantized attention-mask add looks harmless at its own output (the mask's magnitude dominates
the signal: 700+ dB SQNR) and ruins the softmax after it. So for each group h the debugger also
walks the *float* graph from ``out[h]`` through affine ops (``optypes.is_affine``) to the first
non-linear node c, and re-evaluates the float nodes between them with h's isolated quantized
value substituted for ``out[h]`` (every other input keeps its float value):

    through[h] = metric(float c,  float c computed from isolated q(h))

The walk stops after ``MAX_DEPTH`` ops; a group whose own op is non-linear, or that reaches no
non-linear op within the limit, has no consumer path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.debugger.execute import detach, mutates
from pt2q.debugger.groups import GraphGroups
from pt2q.debugger.optypes import is_affine, is_nonlinear

__all__ = ["ConsumerPath", "consumer_paths", "path_hooks", "MAX_DEPTH"]

MAX_DEPTH = 6


@dataclass
class ConsumerPath:
    """Float nodes from ``start`` (= out[handle], excluded) to ``target`` (included)."""

    handle: int
    start: Node
    target: Node
    nodes: list[Node]
    inputs: list[Node]

    def evaluate(
        self, gm: GraphModule, start_value: Any, values: dict[Node, Any], consts: dict[Node, Any]
    ) -> Any:
        """``target``'s value with ``start_value`` at ``start`` and ``values`` for the inputs."""
        interp = torch.fx.Interpreter(gm, garbage_collect_values=False)
        copy = mutates(self.nodes)
        env: dict[Node, Any] = {n: detach(values[n], copy) for n in self.inputs}
        env[self.start] = detach(start_value, copy)
        interp.env = env
        for node in self.nodes:
            env[node] = consts[node] if node in consts else interp.run_node(node)
        return env[self.target]


def _find(start: Node, order: dict[Node, int]) -> tuple[Node, set[Node]] | None:
    """(first non-linear node reached from ``start`` through affine ops, the nodes reached)."""
    reached: set[Node] = set()
    frontier = [start]
    found: list[Node] = []
    for _ in range(MAX_DEPTH):
        nxt: list[Node] = []
        for node in frontier:
            for user in node.users:
                if user in reached or user.op != "call_function":
                    continue
                reached.add(user)
                if is_nonlinear(user):
                    found.append(user)
                elif is_affine(user):
                    nxt.append(user)
        if found:
            return min(found, key=order.__getitem__), reached
        frontier = nxt
    return None


def consumer_paths(groups: GraphGroups, handles: Sequence[int]) -> dict[int, ConsumerPath]:
    """The consumer path of each handle of the float ``groups`` that has one."""
    order = {n: i for i, n in enumerate(groups.gm.graph.nodes)}
    paths: dict[int, ConsumerPath] = {}
    for h in handles:
        if is_nonlinear(groups.rep[h]):
            continue
        start = groups.out[h]
        hit = _find(start, order)
        if hit is None:
            continue
        target, reached = hit
        keep: set[Node] = {target}
        todo = [target]
        while todo:  # the reached nodes that are ancestors of target
            for inp in todo.pop().all_input_nodes:
                if inp in reached and inp not in keep:
                    keep.add(inp)
                    todo.append(inp)
        nodes = sorted(keep, key=order.__getitem__)
        inputs = sorted(
            {i for n in nodes for i in n.all_input_nodes if i not in keep and i is not start},
            key=order.__getitem__,
        )
        paths[h] = ConsumerPath(h, start, target, nodes, inputs)
    return paths


def path_hooks(
    paths: dict[int, ConsumerPath],
    gm: GraphModule,
    consts: dict[Node, Any],
    donor_values: dict[int, Any],
    emit: Callable[[int, Any, Any], None],
) -> dict[Node, Callable[[Any, Any], None]]:
    """``on_node`` hooks for a float run: capture the paths' inputs as they are computed, and at
    each target call ``emit(handle, float target value, through value)``."""
    captured: dict[Node, Any] = {}
    by_target: dict[Node, list[ConsumerPath]] = {}
    for p in paths.values():
        by_target.setdefault(p.target, []).append(p)
    needed = {i for p in paths.values() for i in p.inputs}
    hooks: dict[Node, Callable[[Any, Any], None]] = {}

    copy = mutates(gm.graph.nodes)

    def capture(node: Node) -> Callable[[Any, Any], None]:
        def fn(run: Any, value: Any) -> None:
            captured[node] = detach(value, copy)

        return fn

    def at_target(node: Node) -> Callable[[Any, Any], None]:
        def fn(run: Any, value: Any) -> None:
            for p in by_target[node]:
                if p.handle in donor_values:
                    through = p.evaluate(gm, donor_values.pop(p.handle), captured, consts)
                    emit(p.handle, value, through)

        return fn

    for node in needed:
        hooks[node] = capture(node)
    for node in by_target:
        prev = hooks.get(node)
        if prev is None:
            hooks[node] = at_target(node)
        else:
            cap, tgt = prev, at_target(node)

            def both(run: Any, value: Any, cap: Any = cap, tgt: Any = tgt) -> None:
                cap(run, value)
                tgt(run, value)

            hooks[node] = both
    return hooks
