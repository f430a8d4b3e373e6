"""The pattern engine: traced search / replace pairs over the q/dq reference program.

A :class:`Pattern` is a *search* function written with ``quantized_decomposed`` q/dq ops and
aten ops, traced once with ``torch.fx.symbolic_trace`` and matched with ``SubgraphMatcher``.
Its parameters are wildcards: each binds to the graph node found there, or to the literal
argument found there (scales, zero points, dtypes, strides: *literal-argument capture*); a
parameter used twice must bind to the same thing both times. Its *replace* function receives a
:class:`Rewrite` (the bindings, graph nodes as proxies and literals as Python values, plus the
constant tensors behind ``get_attr`` bindings) and computes the replacement with torch ops on
those proxies; what it computes is traced and inlined in place of the match. Raising
:class:`NoMatch` from ``replace`` keeps the match as it is, with the reason::

    search:    dq(x, xs, xz, ...) -> linear(., dq(w, ws, ...), b) -> q(., os, oz, ...)
    bindings:  {x: Node, xs: 0.02, xz: 3, w: Node(get_attr), ws: 0.01, b: Node | None, os: ...}
    replace:   lambda r: my_op(r["x"], r.constant("packed", pack(r.tensor("w"))), r["oz"])

Matching is exact on ops and on arguments a parameter does not cover (normalised against the op
schema, so a default left out in the graph matches one written out in the search function).
Only the search function's output may have users outside the match.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.fx import Graph, GraphModule, Node, Proxy
from torch.fx.passes.utils.matcher_utils import InternalMatch, SubgraphMatcher
from torch.fx.proxy import GraphAppendingTracer

from pt2q.qdq.ops import is_compute

__all__ = [
    "Value",
    "NoMatch",
    "Pattern",
    "Match",
    "Rewrite",
    "RewriteResult",
    "keyword_replace",
    "find_matches",
    "rewrite",
    "constant_value",
]

Value = Any  # inside search / replace functions: a Proxy (graph value) or a Python literal


class NoMatch(Exception):  # noqa: N818 - a control-flow signal carrying the reason
    """Raised by a ``replace`` function (the match does not fit) or a view (the q/dq form is not
    the one it reads); the message says why."""


@dataclass(frozen=True)
class Pattern:
    """One table entry: ``search`` (q/dq form, traced) and ``replace`` (see the module doc).

    ``name`` identifies the entry in reports and counts.
    """

    name: str
    search: Callable[..., Any]
    replace: Callable[[Rewrite], Value]

    @property
    def graph(self) -> Graph:
        """The traced search graph (traced once per search function; never modified)."""
        return _trace(self.search)


@functools.cache
def _trace(search: Callable[..., Any]) -> Graph:
    """Trace ``search``; drop the placeholders this variant does not use (matcher needs none)."""
    graph = torch.fx.symbolic_trace(search).graph
    for node in list(graph.nodes):
        if node.op == "placeholder" and not node.users:
            graph.erase_node(node)
    return graph


@dataclass(frozen=True)
class Match:
    """One occurrence of a pattern in a graph.

    ``bindings`` maps each search parameter to the graph node or literal it matched; ``nodes``
    are the matched calls in the search function's order; ``root`` is the node whose value the
    match produces (the search function's output).
    """

    pattern: str
    bindings: Mapping[str, Any]
    nodes: tuple[Node, ...]
    root: Node

    def __getitem__(self, name: str) -> Any:
        return self.bindings[name]

    @property
    def compute_nodes(self) -> tuple[Node, ...]:
        """The matched calls that are neither q/dq ops nor ``getitem``s (anchor, post-ops)."""
        return tuple(n for n in self.nodes if is_compute(n))

    @property
    def anchor(self) -> Node:
        """The first compute node (the op the pattern is about); the root for a bare q/dq."""
        compute = self.compute_nodes
        return compute[0] if compute else self.root

    @property
    def post_ops(self) -> tuple[Node, ...]:
        """Compute nodes after the anchor (a fused relu, ...)."""
        return self.compute_nodes[1:]


def constant_value(gm: GraphModule, node: object) -> torch.Tensor:
    """The tensor a ``get_attr`` node reads; ``NoMatch`` naming the node otherwise."""
    if not isinstance(node, Node) or node.op != "get_attr":
        what = f"a {node.op} node {node.name!r}" if isinstance(node, Node) else repr(node)
        raise NoMatch(f"expected a constant (get_attr), found {what}")
    obj: object = gm
    for part in str(node.target).split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, torch.Tensor):
        raise NoMatch(f"get_attr {node.name!r} reads a {type(obj).__name__}, not a tensor")
    return obj


class Rewrite:
    """What a ``replace`` function works with: the match's bindings as values it can compute on.

    ``r[name]`` is a Proxy for a bound node and the literal itself otherwise; ``r.tensor(name)``
    the constant behind a ``get_attr`` binding; ``r.constant(name, tensor)`` a new constant
    (registered on the module only when the replacement is accepted). A lowering sets
    ``r.kernel`` to the kernel the replacement runs; it comes back in the ``RewriteResult``.
    """

    kernel: str | None = None

    def __init__(self, gm: GraphModule, match: Match, resolve: Callable[[Node], Node]) -> None:
        self.gm = gm
        self.match = match
        self.graph = Graph()
        self._tracer = GraphAppendingTracer(self.graph)
        self._inputs: dict[Node, Node] = {}  # placeholder of self.graph -> node of gm
        self._args: dict[str, Value] = {}
        self._pending: dict[str, torch.Tensor] = {}
        for name, value in match.bindings.items():
            if isinstance(value, Node):
                ph = self.graph.placeholder(name)
                self._inputs[ph] = resolve(value)
                self._args[name] = Proxy(ph, self._tracer)
            else:
                self._args[name] = value

    def __getitem__(self, name: str) -> Value:
        return self._args[name]

    @property
    def args(self) -> dict[str, Value]:
        """All bindings, by search-parameter name."""
        return dict(self._args)

    def node(self, name: str) -> Any:
        """The graph node (or literal) bound to ``name``, for reading its meta or target."""
        return self.match.bindings[name]

    def tensor(self, name: str) -> torch.Tensor:
        """The constant tensor behind the ``get_attr`` bound to ``name`` (``NoMatch`` if none)."""
        try:
            return constant_value(self.gm, self.match.bindings[name])
        except NoMatch as e:
            raise NoMatch(f"{self.match.anchor.name}: {name}: {e}") from None

    def constant(self, name: str, value: torch.Tensor) -> Proxy:
        """A new constant buffer ``value`` (attribute named after ``name``), as a proxy."""
        attr, k = name, 0
        while hasattr(self.gm, attr) or attr in self._pending:
            k += 1
            attr = f"{name}_{k}"
        self._pending[attr] = value
        return Proxy(self.graph.get_attr(attr), self._tracer)

    def _commit(self, out: Value) -> Node:
        """Register the new constants and inline the traced replacement before the root."""
        if not isinstance(out, Proxy):
            raise TypeError(
                f"pattern {self.match.pattern!r}: replace must return one tensor value computed "
                f"from the bindings, got {type(out).__name__}"
            )
        for attr, value in self._pending.items():
            self.gm.register_buffer(attr, value)
        self.graph.output(out.node)
        with self.gm.graph.inserting_before(self.match.root):
            new = self.gm.graph.graph_copy(self.graph, val_map=dict(self._inputs))
        assert isinstance(new, Node)
        return new


def keyword_replace(fn: Callable[..., Value]) -> Callable[[Rewrite], Value]:
    """A ``replace`` that calls ``fn`` with the bindings as keyword arguments."""

    def replace(r: Rewrite) -> Value:
        return fn(**r.args)

    replace.__name__ = getattr(fn, "__name__", "replace")
    return replace


@dataclass
class RewriteResult:
    """Outcome of :func:`rewrite`: (match, new node, ``r.kernel``) per rewrite, (match, reason)
    per rejection."""

    rewritten: list[tuple[Match, Node, str | None]] = field(default_factory=list)
    rejected: list[tuple[Match, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rewritten)


def _to_match(pattern: Pattern, im: InternalMatch) -> Match:
    search = pattern.graph
    bindings = {pn.target: im.nodes_map[pn] for pn in search.nodes if pn.op == "placeholder"}
    nodes = tuple(im.nodes_map[pn] for pn in search.nodes if pn.op == "call_function")
    (root,) = im.returning_nodes
    return Match(pattern.name, bindings, nodes, root)


def find_matches(gm: GraphModule, pattern: Pattern) -> Iterator[Match]:
    """Every non-overlapping match of ``pattern`` in ``gm`` (nothing is changed)."""
    needed = {n.target for n in pattern.graph.nodes if n.op == "call_function"}
    present = {n.target for n in gm.graph.nodes if n.op == "call_function"}
    if not needed <= present:
        return  # an op of the pattern is not in the graph: skip the subgraph search
    matcher = SubgraphMatcher(
        pattern.graph,
        match_output=False,
        match_placeholder=False,
        remove_overlapping_matches=True,
        ignore_literals=False,
    )
    for im in matcher.match(gm.graph):
        yield _to_match(pattern, im)


def rewrite(gm: GraphModule, pattern: Pattern) -> RewriteResult:
    """Replace every accepted match of ``pattern`` in ``gm`` (in place; no recompile).

    The new node takes the root's uses and its meta (except ``"val"``); matched nodes left
    without users are erased. A match whose ``replace`` raises :class:`NoMatch` is kept and
    reported with the reason.
    """
    result = RewriteResult()
    replaced: dict[Node, Node] = {}  # an erased root -> the node that took its place

    def resolve(node: Node) -> Node:
        while node in replaced:
            node = replaced[node]
        return node

    for match in list(find_matches(gm, pattern)):
        r = Rewrite(gm, match, resolve)
        try:
            out = pattern.replace(r)
        except NoMatch as e:
            result.rejected.append((match, str(e)))
            continue
        new = r._commit(out)
        new.meta.update({k: v for k, v in match.root.meta.items() if k != "val"})
        match.root.replace_all_uses_with(new)
        replaced[match.root] = new
        for node in reversed(match.nodes):
            if not node.users:
                gm.graph.erase_node(node)
        result.rewritten.append((match, new, r.kernel))
    return result
