"""torchao-compatible ``compare_results`` with explicit matched / unmatched reporting.

``compare_results(ref, actual)`` returns ``{key: NodeAccuracySummary}`` as torchao does (a
``ComparisonResults`` dict; keys are ``NodeSourceDebugInfo`` for provenance handles, ints for
structural handles), and additionally says which keys matched, which reference handles
were folded into a matched group (fusion-aware: the float conv->bn output is compared with the
quantized, BN-folded conv), and which are unmatched on each side. It raises instead of returning
an empty dict when no handle matches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from pt2q.debugger.loggers import ResultKey
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
        """Metric (registry name or ``fn(actual, ref)``) on each tensor of the structure; a
        registry metric gives 0-d float64 tensors, as torchao's losses are tensors."""
        if isinstance(metric, str):
            name = metric
            return _structure(
                lambda a, r: torch.tensor(compute_metric(name, r, a)), self.actual, self.ref
            )
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
    """Comparison of one key over all logged batches: torchao's fields, in torchao's order,
    plus the keys folded into this group and pt2q's int handle."""

    debug_info: ResultKey
    actual_node_name: str
    actual_module_stack: str
    ref_node_name: str
    ref_module_stack: str
    results: Sequence[QuantizationComparisonResult]
    absorbed_handles: tuple[ResultKey, ...] = ()
    handle: int | None = None


class ComparisonResults(dict[ResultKey, NodeAccuracySummary]):
    """``{key: NodeAccuracySummary}`` plus which keys matched and which did not.

    ``matched``: keys in both; ``absorbed[k]``: reference keys folded into k's group;
    ``unmatched_ref`` / ``unmatched_actual``: keys found on one side only.
    """

    def __init__(self) -> None:
        super().__init__()
        self.matched: list[ResultKey] = []
        self.absorbed: dict[ResultKey, list[ResultKey]] = {}
        self.unmatched_ref: list[ResultKey] = []
        self.unmatched_actual: list[ResultKey] = []


def _stack_str(stack: object) -> str:
    if isinstance(stack, dict) and stack:
        last = list(stack.values())[-1]
        return str(last[0]) if isinstance(last, (tuple, list)) else str(last)
    return "" if stack is None else str(stack)


Results = Mapping[ResultKey, tuple[str | None, object, list[Any]]]


def _by_provenance(results: Results) -> Results | None:
    """``results`` re-keyed by their ``debug_info`` (None when one entry lacks it)."""
    out = {}
    for value in results.values():
        info = getattr(value, "debug_info", None)
        if info is None:
            return None
        out[info] = value
    return out


def _next_key(value: object, by_handle: Mapping[int, ResultKey]) -> ResultKey | None:
    nxt = getattr(value, "next_handle", None)
    return None if nxt is None else by_handle.get(nxt)


def compare_results(ref_results: Results, actual_results: Results) -> ComparisonResults:
    """Compare logged values key by key, batch by batch.

    Keys are torchao's ``NodeSourceDebugInfo`` or pt2q's int handles; when the two sides share
    no key but both were logged by pt2q with provenance (one side structural, the other not),
    both are compared by provenance. A reference key missing from ``actual_results`` whose
    value was the only input of the next reference key is folded into that predecessor's group
    (needs pt2q's ``LoggedResult``; plain torchao 3-tuples simply do not fold). Raises
    ``NoMatchingHandlesError`` when no key is shared, and ValueError naming the key and both
    node names when shapes differ.
    """
    if not set(ref_results) & set(actual_results):
        ref_p, act_p = _by_provenance(ref_results), _by_provenance(actual_results)
        if ref_p is not None and act_p is not None:
            ref_results, actual_results = ref_p, act_p
    by_handle = {getattr(v, "debug_handle", None): k for k, v in ref_results.items()}
    by_handle.pop(None, None)
    out = ComparisonResults()
    for key, ref in ref_results.items():
        if key not in actual_results:
            continue
        ref_name, ref_stack, _ = ref
        absorbed: list[ResultKey] = []
        end = ref
        nxt = _next_key(end, by_handle)  # type: ignore[arg-type]
        while nxt is not None and nxt not in actual_results and nxt in ref_results:
            absorbed.append(nxt)
            end = ref_results[nxt]
            nxt = _next_key(end, by_handle)  # type: ignore[arg-type]
        actual = actual_results[key]
        actual_name, actual_stack, actual_stats = actual
        try:
            results = [
                QuantizationComparisonResult(actual=a, ref=r)
                for a, r in zip(actual_stats, end[2], strict=False)
            ]
        except ValueError as e:
            raise ValueError(f"key {key}: ref node {ref_name} vs actual node {actual_name}") from e
        out[key] = NodeAccuracySummary(
            debug_info=key,
            actual_node_name=actual_name or "",
            actual_module_stack=_stack_str(actual_stack),
            ref_node_name=ref_name or "",
            ref_module_stack=_stack_str(ref_stack),
            results=results,
            absorbed_handles=tuple(absorbed),
            handle=getattr(actual, "debug_handle", None),
        )
        out.matched.append(key)
        if absorbed:
            out.absorbed[key] = absorbed
    folded = {k for ks in out.absorbed.values() for k in ks}
    out.unmatched_ref = [k for k in ref_results if k not in actual_results and k not in folded]
    out.unmatched_actual = [k for k in actual_results if k not in ref_results]
    if not out.matched:
        raise NoMatchingHandlesError(
            f"compare_results: none of the {len(ref_results)} reference keys appears among "
            f"the {len(actual_results)} actual keys; was the actual model prepared/converted "
            "from the reference model (same ExportedProgram, or generate_numeric_debug_handle "
            "on the float program before quantization)?"
        )
    return out
