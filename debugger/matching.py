"""Matching a float program with its quantized version: handles, groups, reported rows.

``match_programs`` picks the handles (structural ones when both graphs carry them, else
``from_node`` provenance on copies), builds the fusion-aware groups of both graphs and says
which handles match; ``reported_handles`` picks the groups that get a report row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from torch.export import ExportedProgram
from torch.fx import GraphModule, Node

from pt2q.debugger.compare import NoMatchingHandlesError
from pt2q.debugger.groups import GraphGroups
from pt2q.debugger.handles import module_path
from pt2q.debugger.optypes import is_pass_through, produces_tensor
from pt2q.debugger.provenance import NodeSourceDebugInfo, has_structural_handles, with_handles
from pt2q.debugger.report import UnmatchedNode

__all__ = ["Matching", "match_programs", "reported_handles", "as_graph_module", "as_batches"]


def as_graph_module(model: ExportedProgram | GraphModule, what: str) -> GraphModule:
    """``model`` as a GraphModule (``ep.module()`` for an ExportedProgram)."""
    if isinstance(model, ExportedProgram):
        return model.module()
    if isinstance(model, GraphModule):
        return model
    raise TypeError(
        f"{what}: expected an ExportedProgram or GraphModule, got {type(model).__name__}"
    )


def as_batches(inputs: Iterable[Any]) -> Iterable[tuple[Any, ...]]:
    """Each batch as a tuple of positional args (a bare tensor becomes a 1-tuple)."""
    for batch in inputs:
        yield tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)


@dataclass
class Matching:
    """Groups of the float and quantized graphs and which handles match.

    ``structural``: the handles are ``generate_numeric_debug_handle``'s (both graphs carry
    them), else derived from ``from_node`` provenance; ``infos``: handle -> provenance key.
    """

    float_groups: GraphGroups
    quant_groups: GraphGroups
    matched: list[int]
    unmatched_ref: list[UnmatchedNode]
    unmatched_actual: list[UnmatchedNode]
    structural: bool = True
    infos: dict[int, NodeSourceDebugInfo] = field(default_factory=dict)


def _unmatched(groups: GraphGroups, handles: Iterable[int]) -> list[UnmatchedNode]:
    out = []
    for h in handles:
        node = groups.rep[h]
        out.append(UnmatchedNode(h, node.name, module_path(node)))
    return out


def match_programs(float_gm: GraphModule, quant_gm: GraphModule) -> Matching:
    """Match handles of two graphs; raise when the float graph has none or nothing matches.

    Structural handles are used when both graphs carry them; otherwise both get handles from
    ``from_node`` provenance on copies (the given graphs are not changed).
    """
    structural = has_structural_handles(float_gm) and has_structural_handles(quant_gm)
    float_gm, infos = with_handles(float_gm, structural)
    quant_gm, _ = with_handles(quant_gm, structural)
    quant_all = GraphGroups.build(quant_gm)
    float_all = GraphGroups.build(float_gm)
    if not float_all.rep:
        raise ValueError(
            "debug_numerics: the float program carries neither numeric debug handles nor "
            "from_node provenance; pass the ExportedProgram (or its .module()) the quantized "
            "model was prepared from, or call generate_numeric_debug_handle(ep) before quantizing"
        )
    float_groups = GraphGroups.build(float_gm, keep=quant_all.rep)
    matched = [h for h in float_groups.rep if h in quant_all.rep]
    if not matched:
        how = (
            "prepared from the float program after generate_numeric_debug_handle"
            if structural
            else "prepared from this same ExportedProgram object (from_node provenance names "
            "the exported graph by its id; for programs exported separately or saved and "
            "loaded, call generate_numeric_debug_handle(ep) before quantizing)"
        )
        raise NoMatchingHandlesError(
            f"debug_numerics: none of the {len(float_all.rep)} float handles appears among the "
            f"{len(quant_all.rep)} handles of the quantized program; was the quantized program "
            f"{how}?"
        )
    folded = {h for hs in float_groups.absorbed.values() for h in hs}
    unmatched_ref = [h for h in float_all.rep if h not in quant_all.rep and h not in folded]
    unmatched_actual = [h for h in quant_all.rep if h not in float_all.rep]
    return Matching(
        float_groups,
        quant_all,
        matched,
        _unmatched(float_all, unmatched_ref),
        _unmatched(quant_all, unmatched_actual),
        structural,
        infos,
    )


def reported_handles(match: Matching, passthrough: bool) -> tuple[list[int], dict[int, list[str]]]:
    """Matched handles that get a row, and {producer handle: pass-through nodes folded into it}.

    Groups whose value is no tensor (``_assert_tensor_metadata``) get none; pass-through groups
    (``optypes.is_pass_through``) are folded into the group producing their input unless
    ``passthrough``.
    """
    fg = match.float_groups
    owner = {fg.out[h]: h for h in match.matched}
    keep: list[int] = []
    folded: dict[int, list[str]] = {}
    for h in match.matched:
        rep = fg.rep[h]
        if not produces_tensor(rep):
            continue
        if passthrough or not is_pass_through(rep):
            keep.append(h)
            continue
        src: object = rep
        while isinstance(src, Node) and src.args:
            src = src.args[0]
            if isinstance(src, Node) and src in owner and not is_pass_through(fg.rep[owner[src]]):
                folded.setdefault(owner[src], []).append(rep.name)
                break
    return keep, folded
