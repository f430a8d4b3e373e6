"""Insert observer calls into the graph.

Before (conv output annotated, maxpool input edge + output share it)::

    conv2d -> max_pool2d -> linear

After::

    conv2d -> obs_0 -> max_pool2d -> obs_0 -> linear     (the same module, called twice)

Rules:
* an annotated output gets one observer call right after the node, and *every* consumer reads it
  (unannotated consumers then see quantized values too, as on the target hardware);
* an annotated input edge whose group differs from the producer's output group gets its own call,
  shared by all edges of that group leaving the same value.
"""

from __future__ import annotations

import functools
import operator

import torch
from torch.fx import GraphModule, Node

from pt2q.constants import constant_nodes
from pt2q.meta import copy_meta
from pt2q.prepare.groups import SharingPlan
from pt2q.prepare.guards import GUARDS_FN, add_guard_hint
from pt2q.quantizer.specs import EdgeOrNode

__all__ = ["insert_observers", "OBSERVER_PREFIX"]

OBSERVER_PREFIX = "activation_post_process_"


def _insertion_point(node: Node) -> Node:
    """Observers of graph inputs go after the last placeholder, keeping placeholders first, and
    after the export's input guard, so a batch the guard rejects is never observed."""
    if node.op != "placeholder":
        return node
    last = node
    for n in node.graph.nodes:
        if n.op == "placeholder" or (n.op == "call_module" and n.target == GUARDS_FN):
            last = n
    return last


def insert_observers(
    model: GraphModule,
    plan: SharingPlan,
    obs_of: dict[EdgeOrNode, torch.nn.Module],
    is_qat: bool = False,
) -> dict[str, list[EdgeOrNode]]:
    """Register observers as submodules and call them in the graph (after the input guard, which
    gets the Dim hint of pt2q.prepare.guards).

    In PTQ, an observer whose every call site reads a constant (a weight) is marked
    ``observes_constant``: it observes once, not on every calibration batch.

    Returns observer module name -> the keys it serves (for reports and error messages).
    """
    graph = model.graph
    names: dict[int, str] = {}
    served: dict[str, list[EdgeOrNode]] = {}

    def module_name(obs: torch.nn.Module, key: EdgeOrNode) -> str:
        name = names.get(id(obs))
        if name is None:
            name = f"{OBSERVER_PREFIX}{len(names)}"
            names[id(obs)] = name
            model.add_submodule(name, obs)
        served.setdefault(name, []).append(key)
        return name

    def call(name: str, value: Node) -> Node:
        with graph.inserting_after(_insertion_point(value)):
            obs_node = graph.call_module(name, (value,))
        copy_meta(value, obs_node)
        if "val" in value.meta:
            obs_node.meta["val"] = value.meta["val"]
        return obs_node

    # 1. outputs: every consumer reads the observed value.
    observed: dict[Node, Node] = {}
    output_obs: dict[Node, torch.nn.Module] = {}
    for key, obs in obs_of.items():
        if not isinstance(key, Node):
            continue
        obs_node = call(module_name(obs, key), key)
        key.replace_all_uses_with(
            obs_node, delete_user_cb=functools.partial(operator.is_not, obs_node)
        )
        observed[key] = obs_node
        output_obs[key] = obs

    # 2. input edges not served by the producer's output observer.
    edge_calls: dict[tuple[int, Node], Node] = {}
    for key, obs in obs_of.items():
        if isinstance(key, Node):
            continue
        producer, consumer = key
        if output_obs.get(producer) is obs:
            module_name(obs, key)
            continue
        current = observed.get(producer, producer)
        edge_node = edge_calls.get((id(obs), current))
        if edge_node is None:
            edge_node = call(module_name(obs, key), current)
            edge_calls[(id(obs), current)] = edge_node
        else:
            module_name(obs, key)
        consumer.replace_input_with(current, edge_node)
    if not is_qat:
        _mark_constant_observers(model)
    add_guard_hint(model)
    graph.lint()
    model.recompile()
    return served


def _mark_constant_observers(model: GraphModule) -> None:
    const = constant_nodes(model)
    sources: dict[str, list[bool]] = {}
    for node in model.graph.nodes:
        if node.op == "call_module" and str(node.target).startswith(OBSERVER_PREFIX):
            sources.setdefault(str(node.target), []).append(node.args[0] in const)
    for name, flags in sources.items():
        obs = model.get_submodule(name)
        if all(flags) and hasattr(obs, "observes_constant"):
            setattr(obs, "observes_constant", True)  # noqa: B010  (a plain attribute, not a tensor)
