"""Per-handle groups of a graph: which node stands for a handle, and where its group ends.

Passes change the float graph in ways a per-node comparison misreads; the debugger compares
*groups* instead:

    float:    conv(h1) -> bn(h2) -> relu(h3)            quantized: conv(h1) -> q -> dq -> ...
                                                         (bn folded into conv: h2 is gone)

  * representative ``rep[h]``: the last compute node (not a ``quantized_decomposed`` op) that
    carries ``h``. Decompositions give one handle to several nodes (linear -> permute, addmm;
    batch_norm -> _native_batch_norm_legit_no_training, getitem); the last one holds the value.
  * effective output ``out[h]``: ``rep[h]`` followed through its output ``q -> dq`` chain when it
    has one, i.e. the value downstream nodes of the quantized graph actually see.
  * float group: a handle of the float graph absorbs the handles after it that the other graph
    lost (h1 absorbs h2 above) when each is the single consumer of the previous one. Its
    ``out[h1]`` is then the bn output, the value the folded quantized conv must reproduce.
"""

from __future__ import annotations

import operator
from collections.abc import Collection
from dataclasses import dataclass, field

from torch.fx import GraphModule, Node

from pt2q.qdq.meta import get_handle
from pt2q.qdq.ops import is_dequantize as is_dequantize_node
from pt2q.qdq.ops import is_qdq as is_qdq_node
from pt2q.qdq.ops import is_quantize as is_quantize_node

__all__ = ["GraphGroups", "is_qdq_node", "is_quantize_node", "is_dequantize_node"]


def _is_compute(node: Node) -> bool:
    """A call other than a q/dq op (a ``getitem`` counts: it may hold the op's value, unless it
    reads a run-time ``choose_qparams``: the scale / zero point of a dynamic quantization, whose
    nodes carry the handle of the value they quantize)."""
    if node.op not in ("call_function", "call_method", "call_module") or is_qdq_node(node):
        return False
    source = node.args[0] if node.args else None
    return not (
        node.target is operator.getitem and isinstance(source, Node) and is_qdq_node(source)
    )


@dataclass
class GraphGroups:
    """Handle bookkeeping for one graph (see the module docstring).

    ``absorbed[h]`` lists the handles folded into ``h``'s group (float side only);
    ``chain[h]`` the q/dq nodes between ``rep[h]`` and ``out[h]`` (empty when unquantized).
    """

    gm: GraphModule
    rep: dict[int, Node] = field(default_factory=dict)
    out: dict[int, Node] = field(default_factory=dict)
    chain: dict[int, list[Node]] = field(default_factory=dict)
    absorbed: dict[int, list[int]] = field(default_factory=dict)

    @classmethod
    def build(cls, gm: GraphModule, keep: Collection[int] | None = None) -> GraphGroups:
        """Groups of ``gm``; with ``keep`` (the other graph's handles) absorb the missing ones.

        Only handles in ``keep`` get a group when ``keep`` is given; the others are absorbed
        into their producer's group when they form a single-consumer chain after it.
        """
        groups = cls(gm)
        for node in gm.graph.nodes:
            handle = get_handle(node)
            if handle is not None and _is_compute(node):
                groups.rep[handle] = node
        for handle, node in groups.rep.items():
            chain = _output_chain(node)
            groups.chain[handle] = chain
            groups.out[handle] = chain[-1] if chain else node
        if keep is not None:
            groups._absorb(set(keep))
        return groups

    def _absorb(self, keep: set[int]) -> None:
        for handle in list(self.rep):
            if handle not in keep:
                continue
            absorbed: list[int] = []
            cur = self.out[handle]
            while True:
                users = [u for u in cur.users if u.op != "output"]
                if len(users) != 1 or len(cur.users) != 1:
                    break
                nxt = get_handle(users[0])
                if nxt is None or nxt in keep or nxt == handle or nxt not in self.rep:
                    break
                absorbed.append(nxt)
                cur = self.out[nxt]
            if absorbed:
                self.absorbed[handle] = absorbed
                self.out[handle] = cur
        for handle in [h for h in self.rep if h not in keep]:
            del self.rep[handle], self.out[handle], self.chain[handle]

    @property
    def handles(self) -> list[int]:
        """The handles of this graph's groups, in graph order of their representatives."""
        return list(self.rep)


def _output_chain(node: Node) -> list[Node]:
    """``[q, dq]`` when ``node``'s output goes through a quantize whose users dequantize;
    ``[dq]`` when it is already quantized (a lowered int8 kernel) and a dequantize follows."""
    for user in node.users:
        if is_dequantize_node(user):
            return [user]
    for user in node.users:
        if is_quantize_node(user):
            dqs = [u for u in user.users if is_dequantize_node(u)]
            if dqs:
                return [user, dqs[0]]
    return []
