"""Which ``QuantizationConfig`` applies to a node: the setters' rules and their precedence.

Precedence (first match wins): module name > module type > function/operator type > global.
Within module names (and module types) the innermost module on the node's ``nn_module_stack``
wins, so ``set_module_name("blocks", A)`` + ``set_module_name("blocks.0", B)`` gives block 0 B.
A rule's config may be None: the node stays float, and the reason names the rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch.fx import Node

from pt2q.quantizer import QuantizationConfig
from pt2q.quantizers.op_tables import OpOverload, ops_of_function

__all__ = ["ConfigRules", "Resolved", "module_names_of", "module_types_of"]

_EXPORT_PREFIX = re.compile(r"^L\['self'\]\.?|^L__self__\.?")


def module_names_of(node: Node) -> list[str]:
    """Qualified names of the modules ``node`` comes from, outermost first ("" is the root)."""
    stack: dict[str, tuple[str, Any]] = node.meta.get("nn_module_stack") or {}
    return [_EXPORT_PREFIX.sub("", name) for name, _ in stack.values()]


def _type_name(t: Any) -> str:
    return f"{t.__module__}.{t.__qualname__}" if isinstance(t, type) else str(t)


def module_types_of(node: Node) -> list[str]:
    """Qualified type names of the modules ``node`` comes from, outermost first."""
    stack: dict[str, tuple[str, Any]] = node.meta.get("nn_module_stack") or {}
    return [_type_name(t) for _, t in stack.values()]


@dataclass(frozen=True)
class Resolved:
    """The config chosen for a node (None = float) and the rule that chose it, e.g.
    ``"module name 'encoder.0'"``, for coverage messages."""

    config: QuantizationConfig | None
    rule: str
    # True when the node is opt-in and no explicit rule named it (the global config was skipped).
    opt_in_default: bool = False


@dataclass
class ConfigRules:
    """The setters' state. ``node_filter`` (if set) keeps only the nodes it returns True for."""

    global_config: QuantizationConfig | None = None
    module_name: dict[str, QuantizationConfig | None] = field(default_factory=dict)
    module_type: dict[type, QuantizationConfig | None] = field(default_factory=dict)
    op_type: dict[OpOverload, QuantizationConfig | None] = field(default_factory=dict)
    node_filter: Callable[[Node], bool] | None = None
    # Opt-in: quantize ops that carry masking constants (annotators/masks.py) like any other.
    quantize_masks: bool = False

    def set_function_type(self, fn: Any, config: QuantizationConfig | None) -> None:
        """Rule for every aten op ``fn`` exports to (a Python function or an aten op)."""
        for op in ops_of_function(fn):
            self.op_type[op] = config

    def set_module_type(self, module_type: type, config: QuantizationConfig | None) -> None:
        if not isinstance(module_type, type):
            raise TypeError(f"module_type: expected an nn.Module class, found {module_type!r}")
        self.module_type[module_type] = config

    def set_module_name(self, name: str, config: QuantizationConfig | None) -> None:
        if not isinstance(name, str):
            raise TypeError(f"module_name: expected a str like 'encoder.layer.0', found {name!r}")
        self.module_name[name] = config

    def configs(self) -> list[QuantizationConfig]:
        """Every non-None config of every rule (to check they agree on QAT/dynamic)."""
        all_cfgs = [self.global_config, *self.module_name.values(), *self.module_type.values()]
        all_cfgs += list(self.op_type.values())
        return [c for c in all_cfgs if c is not None]

    @property
    def is_empty(self) -> bool:
        """No rule at all: the quantizer would annotate nothing."""
        return self.global_config is None and not (
            self.module_name or self.module_type or self.op_type
        )

    def resolve(self, node: Node, opt_in: bool = False) -> Resolved:
        """The config for ``node`` by precedence (see module docstring).

        ``opt_in`` ops (e.g. x86 matmul) ignore the global config: only an explicit rule
        (module name/type or function type) quantizes them.
        """
        if self.node_filter is not None and not self.node_filter(node):
            return Resolved(None, "filter function returned False")
        for name in reversed(module_names_of(node)):
            if name in self.module_name:
                return Resolved(self.module_name[name], f"module name '{name}'")
        if self.module_type:
            by_name = {_type_name(t): t for t in self.module_type}
            for tname in reversed(module_types_of(node)):
                if tname in by_name:
                    return Resolved(self.module_type[by_name[tname]], f"module type {tname}")
        if node.target in self.op_type:
            return Resolved(self.op_type[node.target], f"function/operator type {node.target}")
        if opt_in:
            return Resolved(
                None, f"{node.target} is opt-in: no module or function-type rule set", True
            )
        if self.global_config is None:
            return Resolved(None, "global config not set")
        return Resolved(self.global_config, "global")
