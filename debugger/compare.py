"""torchao-compatible ``compare_results`` with explicit matched / unmatched reporting.

``compare_results(ref, actual)`` returns ``{handle: NodeAccuracySummary}`` as torchao does (a
``ComparisonResults`` dict), and additionally says which handles matched, which reference handles
were folded into a matched group (fusion-aware: the float conv->bn output is compared with the
quantized, BN-folded conv), and which are unmatched on each side. It raises instead of returning
an empty dict when no handle matches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from pt2q.debugger.metrics import compute_metric

__all__ = [
    "QuantizationComparisonResult",
    "NodeAccuracySummary",
    "ComparisonResults",
    "NoMatchingHandlesError",
    "compare_results",
]


class NoMatchingHandlesError(ValueError):
    """No numeric debug handle is shared by the two compared programs."""


def _structure(fn: Callable[[torch.Tensor, torch.Tensor], Any], a: Any, r: Any) -> Any:
    if isinstance(a, torch.Tensor) and isinstance(r, torch.Tensor):
        return fn(a, r)
    if isinstance(a, (list, tuple)) and isinstance(r, (list, tuple)):
        return type(a)(_structure(fn, x, y) for x, y in zip(a, r, strict=True))
    if isinstance(a, dict) and isinstance(r, dict):
        return {k: _structure(fn, v, r[k]) for k, v in a.items()}
    return None


def _shapes_equal(a: Any, r: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(r, torch.Tensor):
        return a.shape == r.shape
    if isinstance(a, (list, tuple)) and isinstance(r, (list, tuple)):
        return len(a) == len(r) and all(_shapes_equal(x, y) for x, y in zip(a, r, strict=True))
    if isinstance(a, dict) and isinstance(r, dict):
        return a.keys() == r.keys() and all(_shapes_equal(a[k], r[k]) for k in a)
    return type(a) is type(r) and a == r


@dataclass(frozen=True)
class QuantizationComparisonResult:
    """One batch: ``actual`` vs ``ref`` (same structure). Metrics use pt2q.debugger.metrics."""

    actual: Any
    ref: Any

    def __post_init__(self) -> None:
        for name in ("actual", "ref"):
            value = getattr(self, name)
            if not isinstance(value, (torch.Tensor, list, tuple, dict)):
                raise ValueError(
                    f"QuantizationComparisonResult.{name} must be a Tensor, list, tuple or "
                    f"dict, got {type(value).__name__}"
                )
        if not _shapes_equal(self.actual, self.ref):
            raise ValueError(
                "QuantizationComparisonResult: cannot compare values of different shapes: "
                f"ref {_shape_str(self.ref)} vs actual {_shape_str(self.actual)}"
            )

    def loss(self, metric: str | Callable[[torch.Tensor, torch.Tensor], Any]) -> Any:
        """Metric (registry name or ``fn(actual, ref)``) on each tensor of the structure."""
        if isinstance(metric, str):
            name = metric
            return _structure(lambda a, r: compute_metric(name, r, a), self.actual, self.ref)
        return _structure(metric, self.actual, self.ref)

    @property
    def sqnr(self) -> Any:
        return self.loss("sqnr")

    @property
    def mse_loss(self) -> Any:
        return self.loss("mse")

    @property
    def max_abs(self) -> Any:
        return self.loss("max_abs")

    @property
    def cosine(self) -> Any:
        return self.loss("cosine")

    def __repr__(self) -> str:
        return f"QuantizationComparisonResult(mse_loss={self.mse_loss}, sqnr={self.sqnr})"


def _shape_str(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return str(tuple(x.shape))
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_shape_str(e) for e in x) + "]"
    return type(x).__name__


@dataclass(frozen=True)
class NodeAccuracySummary:
    """Comparison of one handle over all logged batches (torchao's fields plus the group)."""

    handle: int
    actual_node_name: str
    actual_module_stack: str
    ref_node_name: str
    ref_module_stack: str
    results: Sequence[QuantizationComparisonResult]
    absorbed_handles: tuple[int, ...] = ()


class ComparisonResults(dict[int, NodeAccuracySummary]):
    """``{handle: NodeAccuracySummary}`` plus which handles matched and which did not.

    ``matched``: handles in both; ``absorbed[h]``: reference handles folded into h's group;
    ``unmatched_ref`` / ``unmatched_actual``: handles found on one side only.
    """

    def __init__(self) -> None:
        super().__init__()
        self.matched: list[int] = []
        self.absorbed: dict[int, list[int]] = {}
        self.unmatched_ref: list[int] = []
        self.unmatched_actual: list[int] = []


def _stack_str(stack: object) -> str:
    if isinstance(stack, dict) and stack:
        last = list(stack.values())[-1]
        return str(last[0]) if isinstance(last, (tuple, list)) else str(last)
    return "" if stack is None else str(stack)


def compare_results(
    ref_results: Mapping[int, tuple[str | None, object, list[Any]]],
    actual_results: Mapping[int, tuple[str | None, object, list[Any]]],
) -> ComparisonResults:
    """Compare logged values handle by handle, batch by batch.

    A reference handle missing from ``actual_results`` whose value was the only input of the
    next reference handle is folded into that predecessor's group (needs the ``next_handle`` of
    ``LoggedResult``; plain torchao 3-tuples simply do not fold). Raises
    ``NoMatchingHandlesError`` when no handle is shared, and ValueError naming the handle and
    both node names when shapes differ.
    """
    out = ComparisonResults()
    for handle, ref in ref_results.items():
        if handle not in actual_results:
            continue
        ref_name, ref_stack, _ = ref
        absorbed: list[int] = []
        end = ref
        nxt = getattr(end, "next_handle", None)
        while nxt is not None and nxt not in actual_results and nxt in ref_results:
            absorbed.append(nxt)
            end = ref_results[nxt]
            nxt = getattr(end, "next_handle", None)
        actual_name, actual_stack, actual_stats = actual_results[handle]
        try:
            results = [
                QuantizationComparisonResult(actual=a, ref=r)
                for a, r in zip(actual_stats, end[2], strict=False)
            ]
        except ValueError as e:
            raise ValueError(
                f"numeric_debug_handle={handle}: ref node {ref_name} vs actual node {actual_name}"
            ) from e
        out[handle] = NodeAccuracySummary(
            handle=handle,
            actual_node_name=actual_name or "",
            actual_module_stack=_stack_str(actual_stack),
            ref_node_name=ref_name or "",
            ref_module_stack=_stack_str(ref_stack),
            results=results,
            absorbed_handles=tuple(absorbed),
        )
        out.matched.append(handle)
        if absorbed:
            out.absorbed[handle] = absorbed
    folded = {h for hs in out.absorbed.values() for h in hs}
    out.unmatched_ref = [h for h in ref_results if h not in actual_results and h not in folded]
    out.unmatched_actual = [h for h in actual_results if h not in ref_results]
    if not out.matched:
        raise NoMatchingHandlesError(
            f"compare_results: none of the {len(ref_results)} reference handles appears among "
            f"the {len(actual_results)} actual handles; were both programs given handles by "
            "generate_numeric_debug_handle on the same float model before quantization?"
        )
    return out
