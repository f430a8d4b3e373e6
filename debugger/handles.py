"""Stable numeric debug handles: structural ids stored in ``node.meta["custom"]``.

A handle names one node of the *float* graph. It is a hash of the node's structure, never of a
Python object id, so two separate exports of the same model, a deep copy, a decomposed or
re-exported program and a program loaded from ``torch.export.save`` in another process all get
(or keep) the same handles:

    key(n)    = "<op target>|<module path>|<args>"    args: handles of producer nodes,
                                                       "param:<fqn>", "input:<i>", literals
    handle(n) = first 48 bits of sha256(key(n))        (JSON- and JavaScript-safe int)

A node whose key repeats (same op, module and inputs) gets ``key + "#<k>"``. The handle lives in
``node.meta["custom"]["numeric_debug_handle"]`` because ``torch.export`` carries
``meta["custom"]`` through ``run_decompositions``, re-export and save/load, and
``prepare_pt2e``/``convert_pt2e`` keep the meta of the nodes they do not remove. Nodes that a
pass creates from a handled node (decomposition outputs, q/dq nodes) may share its handle;
``pt2q.debugger.groups`` picks one representative per handle.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch.export import ExportedProgram
from torch.fx import GraphModule, Node

from pt2q.qdq.meta import CUSTOM_KEY, NUMERIC_DEBUG_HANDLE_KEY, get_handle, set_handle

__all__ = [
    "CUSTOM_KEY",
    "NUMERIC_DEBUG_HANDLE_KEY",
    "generate_numeric_debug_handle",
    "get_handle",
    "set_handle",
    "handled_nodes",
    "module_path",
    "source_line",
]

_HANDLE_BITS = 48


def handled_nodes(graph: torch.fx.Graph) -> Iterator[tuple[Node, int]]:
    """(node, handle) for every node of ``graph`` that carries a handle, in graph order."""
    for node in graph.nodes:
        handle = get_handle(node)
        if handle is not None:
            yield node, handle


def module_path(node: Node) -> str:
    """Dotted path of the innermost ``nn.Module`` the node came from ("" for the root)."""
    stack = node.meta.get("nn_module_stack")
    if not isinstance(stack, dict) or not stack:
        return ""
    last = list(stack.values())[-1]
    if isinstance(last, (tuple, list)) and last:
        return str(last[0])
    return str(last)


_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep


def source_line(node: Node) -> str:
    """``file:line`` of the innermost frame outside torch that produced ``node``: the model
    code's own line (a transformers layer, the user's ``forward``), not a wrapper calling it."""
    trace = node.meta.get("stack_trace")
    if not isinstance(trace, str):
        return ""
    frames: list[tuple[str, str]] = []
    for line in trace.splitlines():
        line = line.strip()
        if line.startswith('File "'):
            # File "/path/x.py", line 7, in forward
            parts = line.split('"')
            if len(parts) >= 3:
                rest = parts[2].split(",")
                lineno = rest[1].strip().removeprefix("line ").strip() if len(rest) > 1 else "?"
                frames.append((parts[1], lineno))
    if not frames:
        return ""
    outside = [f for f in frames if not f[0].startswith(_TORCH_DIR) and "/torch/" not in f[0]]
    file, lineno = (outside or frames)[-1]
    return f"{file}:{lineno}"


def _param_names(gm_or_ep: GraphModule | ExportedProgram) -> dict[str, str]:
    """Placeholder name -> fully qualified parameter/buffer/constant name (ExportedProgram)."""
    if not isinstance(gm_or_ep, ExportedProgram):
        return {}
    sig = gm_or_ep.graph_signature
    names: dict[str, str] = {}
    names.update(sig.inputs_to_parameters)
    names.update(sig.inputs_to_buffers)
    names.update(getattr(sig, "inputs_to_lifted_tensor_constants", {}))
    return names


def _literal(value: Any) -> str:
    if isinstance(value, (bool, int, float, str, type(None), torch.dtype, torch.device)):
        return repr(value)
    if isinstance(value, (torch.layout, torch.memory_format)):
        return str(value)
    return "?"  # symbolic sizes and other values that may differ between exports


def _arg_token(arg: Any, tokens: dict[Node, str]) -> str:
    if isinstance(arg, Node):
        return tokens.get(arg, "?")
    if isinstance(arg, (list, tuple)):
        return "[" + ",".join(_arg_token(a, tokens) for a in arg) + "]"
    if isinstance(arg, dict):
        return "{" + ",".join(f"{k}:{_arg_token(v, tokens)}" for k, v in sorted(arg.items())) + "}"
    return _literal(arg)


def _hash(key: str) -> int:
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return int(digest, 16) >> (256 - _HANDLE_BITS)


def generate_numeric_debug_handle(ep: ExportedProgram | GraphModule) -> None:
    """Attach a structural numeric debug handle to every ``call_function`` node, in place.

    Accepts an ``ExportedProgram`` (as torchao does) or a ``GraphModule`` from ``ep.module()``.
    Nodes that already carry a handle keep it (so calling twice, or on a graph whose handles
    came through a transformation, changes nothing); new handles never collide with them.
    Calls on two separate exports of the same model give equal handles to equal nodes.
    """
    if not isinstance(ep, (ExportedProgram, GraphModule)):
        raise ValueError(
            "generate_numeric_debug_handle: expected an ExportedProgram or GraphModule, "
            f"got {type(ep).__name__}"
        )
    graph = ep.graph
    params = _param_names(ep)
    tokens: dict[Node, str] = {}
    used: set[int] = {h for _, h in handled_nodes(graph)}
    seen_keys: dict[str, int] = {}
    n_inputs = 0
    for node in graph.nodes:
        if node.op == "placeholder":
            if node.name in params:
                tokens[node] = f"param:{params[node.name]}"
            else:
                tokens[node] = f"input:{n_inputs}"
                n_inputs += 1
        elif node.op == "get_attr":
            tokens[node] = f"param:{node.target}"
        elif node.op == "call_function":
            target = getattr(node.target, "__name__", None) if callable(node.target) else None
            op = str(node.target) if isinstance(node.target, torch._ops.OpOverload) else target
            args = _arg_token(node.args, tokens) + _arg_token(node.kwargs, tokens)
            key = f"{op}|{module_path(node)}|{args}"
            count = seen_keys.get(key, 0)
            seen_keys[key] = count + 1
            if count:
                key = f"{key}#{count}"
            handle = get_handle(node)
            if handle is None:
                handle = _hash(key)
                while handle in used:  # astronomically rare; stays deterministic
                    handle = (handle + 1) % (1 << _HANDLE_BITS)
                used.add(handle)
                set_handle(node, handle)
            tokens[node] = f"h{handle}"
