"""Module-attribute helpers of ``torchao.quantization.pt2e.utils``: dotted-name lookup, fresh
attribute names, constants registered as buffers behind a ``get_attr`` node, and per-submodule
example inputs."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch.fx import Graph, Node
from torch.nn.utils import parametrize

__all__ = [
    "create_getattr_from_value",
    "get_fqn_to_example_inputs",
    "get_new_attr_name_with_prefix",
    "getattr_from_fqn",
    "has_no_children_ignoring_parametrizations",
]


def getattr_from_fqn(obj: Any, fqn: str) -> Any:
    """``obj.foo.bar.baz`` for ``fqn="foo.bar.baz"``."""
    return functools.reduce(getattr, fqn.split("."), obj)


def get_new_attr_name_with_prefix(prefix: str) -> Callable[[torch.nn.Module], str]:
    """A function giving the first unused attribute name ``<prefix><i>`` (i = 0, 1, ...) of a
    module; dots in ``prefix`` become underscores."""
    prefix = prefix.replace(".", "_")

    def get_new_attr_name(module: torch.nn.Module) -> str:
        i = 0
        while hasattr(module, f"{prefix}{i}"):
            i += 1
        return f"{prefix}{i}"

    return get_new_attr_name


def _unique_device(module: torch.nn.Module) -> torch.device | None:
    devices = {p.device for p in module.parameters()} | {b.device for b in module.buffers()}
    if len(devices) > 1:
        raise ValueError(
            f"create_getattr_from_value: the module's tensors are on several devices "
            f"{sorted(map(str, devices))}; pass device= explicitly"
        )
    return next(iter(devices), None)


def create_getattr_from_value(
    module: torch.nn.Module,
    graph: Graph,
    prefix: str,
    value: Any,
    device: torch.device | None = None,
) -> Node:
    """Register ``value`` (a tensor, copied, or anything ``torch.tensor`` takes) as a new
    buffer ``<prefix><i>`` of ``module`` and return a ``get_attr`` node reading it (created at
    the graph's current insertion point)."""
    attr_name = get_new_attr_name_with_prefix(prefix)(module)
    if device is None:
        device = _unique_device(module)
    if isinstance(value, torch.Tensor):
        new_value = value.detach().clone()
    else:
        new_value = torch.tensor(value, device=device)
    module.register_buffer(attr_name, new_value)
    return graph.create_node("get_attr", attr_name)


def has_no_children_ignoring_parametrizations(module: torch.nn.Module) -> bool:
    """True for a leaf module; a module whose only child is its ``parametrizations`` container
    (``torch.nn.utils.parametrize``) counts as a leaf too."""
    children = dict(module.named_children())
    if not children:
        return True
    if not parametrize.is_parametrized(module):
        return False
    return len(children) == 1 and "parametrizations" in children


def _positional_inputs(forward: Callable, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple:
    """``args`` followed by the remaining parameters of ``forward`` in order: given keywords,
    else their defaults (``*args`` / ``**kwargs`` parameters are not supported)."""
    params = list(inspect.signature(forward).parameters.values())
    values = list(args)
    for param in params[len(args) :]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.name in kwargs:
            values.append(kwargs[param.name])
        elif param.default is not param.empty:
            values.append(param.default)
    return tuple(values)


def get_fqn_to_example_inputs(
    model: torch.nn.Module, example_inputs: tuple[Any, ...]
) -> dict[str, tuple[Any, ...]]:
    """Run ``model(*example_inputs)`` once and return, for every submodule called, its fully
    qualified name -> the positional inputs it got (keywords and defaults filled in order).
    The root module is keyed ``""``. Uses forward pre-hooks, removed afterwards."""
    names = {m: name for name, m in model.named_modules()}
    found: dict[str, tuple[Any, ...]] = {}

    def hook(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if module in names:
            found[names[module]] = _positional_inputs(module.forward, args, kwargs)

    handles = [m.register_forward_pre_hook(hook, with_kwargs=True) for m in set(names)]
    try:
        model(*example_inputs)
    finally:
        for handle in handles:
            handle.remove()
    return found
