"""A straight-line runner of named graph passes: each pass reports whether it changed the graph,
and an exception raised inside a pass carries the pass's name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["run_pass"]

T = TypeVar("T")


def run_pass(api: str, name: str, fn: Callable[..., T], *args: Any) -> T:
    """Call ``fn(*args)``; on error, add a note naming ``api`` and the pass, and re-raise."""
    try:
        return fn(*args)
    except Exception as e:
        e.add_note(f"(raised in pt2q {api}, pass '{name}')")
        raise
