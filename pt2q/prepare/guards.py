"""The exported module's input guard, with a hint when calibration data breaks it.

``torch.export.export(m, args).module()`` checks every call's inputs against the shapes the
export specialised on (a ``_guards_fn`` submodule called right after the placeholders) and
raises ``AssertionError: Guard failed: input.size()[0] == 2``. Calibrating with another batch
size is the usual way to hit it. Prepare wraps the guard so the same ``AssertionError`` type
is raised with what was expected, what was found and the fix (export with ``torch.export.Dim``)::

    placeholders -> _guards_fn (GuardWithHint(original)) -> observers of the inputs -> ...
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.fx import GraphModule

__all__ = ["ExportGuardError", "GuardWithHint", "GUARDS_FN", "add_guard_hint"]

GUARDS_FN = "_guards_fn"


class ExportGuardError(AssertionError):
    """Inputs that the exported program's shape guards reject (an AssertionError, as torch's)."""


class GuardWithHint(nn.Module):
    """Calls the export's guard; on failure re-raises it naming the input, dims and the fix."""

    def __init__(self, guard: nn.Module, input_names: list[str], shapes: list[Any]) -> None:
        super().__init__()
        self.guard = guard
        self.input_names = input_names
        self.shapes = shapes  # per flat input: tuple of int | str (symbolic) or None

    def _mismatches(self, args: tuple[Any, ...]) -> list[str]:
        found = []
        for name, expected, value in zip(self.input_names, self.shapes, args, strict=False):
            if expected is None or not isinstance(value, torch.Tensor):
                continue
            if len(expected) != value.dim():
                found.append(f"'{name}' has {value.dim()} dims, exported with {len(expected)}")
                continue
            for dim, (want, got) in enumerate(zip(expected, value.shape, strict=True)):
                if isinstance(want, int) and want != got:
                    found.append(f"'{name}' dim {dim} is {got}, exported as static {want}")
        return found

    def forward(self, *args: Any) -> Any:
        try:
            return self.guard(*args)
        except AssertionError as e:
            detail = "; ".join(self._mismatches(args)) or "input shapes differ from the export"
            raise ExportGuardError(
                f"{e}: the prepared model accepts only the input shapes torch.export allowed "
                f"({detail}). To calibrate with other sizes, export with a dynamic dimension, "
                "e.g. torch.export.export(model, args, dynamic_shapes={'<input>': "
                "{0: torch.export.Dim('batch')}}), and prepare that program."
            ) from e


def _shape_of(val: Any) -> tuple[int | str, ...] | None:
    if not isinstance(val, torch.Tensor):
        return None
    return tuple(int(s) if isinstance(s, int) else str(s) for s in val.shape)


def add_guard_hint(model: GraphModule) -> bool:
    """Wrap ``model._guards_fn`` in :class:`GuardWithHint`; returns whether it changed anything."""
    guard = getattr(model, GUARDS_FN, None)
    if not isinstance(guard, nn.Module) or isinstance(guard, GuardWithHint):
        return False
    placeholders = model.graph.find_nodes(op="placeholder")
    names = [str(p.target) for p in placeholders]
    shapes = [_shape_of(p.meta.get("val")) for p in placeholders]
    setattr(model, GUARDS_FN, GuardWithHint(guard, names, shapes))
    return True
