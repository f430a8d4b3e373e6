"""Quantize a KV-cache buffer in place: int8 storage, one (scale, zero point) per token per head.

A decoder exported with a static cache mutates buffers (``index_put_``, ``index_copy_``, or
``copy_`` into a slice). ``KVCacheQuantizer`` puts a ``KVCacheObserver`` on the value of each
write; convert then rewrites the whole buffer once (the first of its observers does it)::

    before                                     after
    k_cache: f32 (B, H, S, D)                  k_cache: int8 (B, H, S, D)      (same name)
                                               k_cache_scale: f32 (B, H, S, 1)
                                               k_cache_zero_point: i32 (B, H, S, 1)
    index_put_(k_cache, idx, obs(k))           qp = choose_qparams_per_token_asymmetric(k, int8)
                                               s = _to_copy(qp[0], f32); z = _to_copy(qp[1], i32)
                                               index_put_(k_cache, idx, quantize_per_token(k, s, z,
                                                          -128, 127, int8))
                                               index_put_(k_cache_scale, idx, s)
                                               index_put_(k_cache_zero_point, idx, z)
    read(k_cache)  (any other use)             read(dequantize_per_token(k_cache, k_cache_scale,
                                                    k_cache_zero_point, -128, 127, int8, f32))

The mutations stay mutations (the program still updates its cache, now in int8), reads
dequantize the state at their point in the program, and the buffer's current content is
quantized per token at convert. The reduction is over the buffer's last dim (head_dim): a write
whose indices or view chain touch the last dim, a write that is not quantized, a buffer that
shares storage with another buffer or parameter (aliased), raise ``KVCacheError`` naming them.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.meta import copy_meta

__all__ = [
    "KVCacheError",
    "KV_WRITE_OPS",
    "KV_VIEW_OPS",
    "cache_tensor",
    "convert_kv_cache_observer",
]

aten = torch.ops.aten
qd = torch.ops.quantized_decomposed

# write op -> index of its value argument (its destination is args[0])
KV_WRITE_OPS: dict[Any, int] = {
    aten.index_put_.default: 2,
    aten.index_copy_.default: 3,
    aten.copy_.default: 1,
}
# view ops a write destination may go through, with the index of their ``dim`` argument
KV_VIEW_OPS: dict[Any, int] = {
    aten.slice.Tensor: 1,
    aten.select.int: 1,
    aten.narrow.default: 1,
}


class KVCacheError(ValueError):
    """A KV-cache buffer cannot be quantized as asked (aliasing, unquantized write, ...)."""


def _is_kv_observer(model: GraphModule, node: Any) -> bool:
    from pt2q.convert.qdq import observer_of
    from pt2q.observer.kv_cache import KVCacheObserver

    return isinstance(node, Node) and isinstance(observer_of(model, node), KVCacheObserver)


def _root(dest: Node, where: str) -> tuple[Node, list[Node]]:
    """(buffer get_attr, view chain from it to ``dest``)."""
    chain: list[Node] = []
    node = dest
    while node.op == "call_function" and node.target in KV_VIEW_OPS:
        chain.insert(0, node)
        node = node.args[0]  # type: ignore[assignment]
    if node.op != "get_attr":
        raise KVCacheError(f"{where}: the write's destination is not a buffer ('{node.name}')")
    return node, chain


def _check_keeps_head_dim(write: Node, chain: list[Node], rank: int, where: str) -> None:
    """A write may index / slice any dim but the last (head_dim, the reduction dim)."""
    last = rank - 1
    for view in chain:
        dim = view.args[KV_VIEW_OPS[view.target]]
        if isinstance(dim, int) and dim % rank == last:
            raise KVCacheError(f"{where}: '{view.name}' slices the last (head) dim of the cache")
    if write.target == aten.index_put_.default:
        indices = write.args[1]
        if isinstance(indices, (list, tuple)) and len(indices) > last:
            raise KVCacheError(f"{where}: '{write.name}' indexes the last (head) dim of the cache")
    dim = write.args[1]
    if write.target == aten.index_copy_.default and isinstance(dim, int) and dim % rank == last:
        raise KVCacheError(f"{where}: '{write.name}' copies along the last (head) dim")


def _owner(model: GraphModule, name: str) -> tuple[torch.nn.Module, str]:
    prefix, _, attr = name.rpartition(".")
    return (model.get_submodule(prefix) if prefix else model), attr


def cache_tensor(model: GraphModule, name: str) -> torch.Tensor | None:
    """The tensor a ``get_attr`` of ``name`` reads when it can be a cache: a buffer or a plain
    tensor attribute (a lifted constant, as transformers' static cache exports), not a
    parameter; None otherwise."""
    try:
        owner, attr = _owner(model, name)
    except AttributeError:
        return None
    value = getattr(owner, attr, None)
    if not isinstance(value, torch.Tensor) or isinstance(value, torch.nn.Parameter):
        return None
    return value


def _check_not_aliased(model: GraphModule, name: str, cache: torch.Tensor) -> None:
    """Refuse a cache sharing storage with another tensor the program reads or writes."""
    ptr = cache.untyped_storage().data_ptr()
    for node in model.graph.nodes:
        if node.op != "get_attr" or node.target == name or not node.users:
            continue  # an unused alias (transformers registers its cache twice) is harmless
        try:
            owner, attr = _owner(model, str(node.target))
        except AttributeError:
            continue
        other = getattr(owner, attr, None)
        if isinstance(other, torch.Tensor) and other.untyped_storage().data_ptr() == ptr:
            raise KVCacheError(
                f"KV cache '{name}' shares its storage with '{node.target}' (aliased buffers), "
                "which the program also uses: quantizing one would silently change the other; "
                "register the cache as its own buffer (e.g. .clone() it) or leave it float"
            )


def _replay(graph: Any, chain: list[Node], base: Node) -> Node:
    """The view chain ``chain`` applied to ``base`` (a scale / zero-point buffer)."""
    for view in chain:
        base = graph.call_function(view.target, (base, *view.args[1:]), dict(view.kwargs))
        copy_meta(view, base)
    return base


def _rewrite_write(
    model: GraphModule, write: Node, chain: list[Node], s_attr: Node, z_attr: Node, where: str
) -> None:
    graph = model.graph
    vi = KV_WRITE_OPS[write.target]
    obs_node: Node = write.args[vi]  # type: ignore[assignment]
    x = obs_node.args[0]
    with graph.inserting_before(write):
        qp = graph.call_function(qd.choose_qparams_per_token_asymmetric.default, (x, torch.int8))
        s = graph.call_function(operator.getitem, (qp, 0))
        z = graph.call_function(operator.getitem, (qp, 1))
        s32 = graph.call_function(aten._to_copy.default, (s,), {"dtype": torch.float32})
        z32 = graph.call_function(aten._to_copy.default, (z,), {"dtype": torch.int32})
        xq = graph.call_function(
            qd.quantize_per_token.default, (x, s32, z32, -128, 127, torch.int8)
        )
        new = [qp, s, z, s32, z32, xq]
    with graph.inserting_before(write.next):  # in order, right after the write
        for attr, value in ((s_attr, s32), (z_attr, z32)):
            dest = _replay(graph, chain, attr)
            args = list(write.args)
            args[0], args[vi] = dest, value
            op: Any = write.target
            new.append(graph.call_function(op, tuple(args), dict(write.kwargs)))
    for n in new:
        copy_meta(write, n)
    write.replace_input_with(obs_node, xq)


def _quantize_buffer(model: GraphModule, buf_node: Node, where: str) -> None:
    graph = model.graph
    name = str(buf_node.target)
    cache = cache_tensor(model, name)
    if cache is None or not cache.is_floating_point() or cache.dim() < 2:
        raise KVCacheError(
            f"{where}: '{name}' is not a float buffer of rank >= 2 (found {cache!r:.80})"
        )
    _check_not_aliased(model, name, cache)
    attrs = [n for n in graph.nodes if n.op == "get_attr" and n.target == name]
    writes: list[tuple[Node, list[Node]]] = []
    reads: list[tuple[Node, Node]] = []  # (reader, node it reads the cache through)

    def visit(node: Node, chain: list[Node]) -> None:
        for user in list(node.users):
            if user.target in KV_WRITE_OPS and user.args[0] is node:
                value = user.args[KV_WRITE_OPS[user.target]]
                if not _is_kv_observer(model, value):
                    raise KVCacheError(
                        f"{where}: '{user.name}' writes an unquantized value into '{name}'; "
                        "every write of a quantized cache must be annotated (KVCacheQuantizer)"
                    )
                _check_keeps_head_dim(user, chain, cache.dim(), where)
                writes.append((user, chain))
                reads.extend((r, user) for r in user.users)
            elif user.target in KV_VIEW_OPS and any(u.target in KV_WRITE_OPS for u in user.users):
                if any(u.target not in KV_WRITE_OPS for u in user.users):
                    raise KVCacheError(
                        f"{where}: view '{user.name}' of '{name}' is both written and read"
                    )
                visit(user, [*chain, user])
            else:
                reads.append((user, node))

    for attr in attrs:
        visit(attr, [])
    owner, attr_name = _owner(model, name)
    with torch.no_grad():
        s0, z0 = qd.choose_qparams_per_token_asymmetric(cache, torch.int8)
        s0, z0 = s0.float(), z0.to(torch.int32)
        q0 = qd.quantize_per_token(cache, s0, z0, -128, 127, torch.int8)
    if attr_name not in owner._buffers:  # a plain tensor attribute (lifted constant)
        delattr(owner, attr_name)
    owner.register_buffer(attr_name, q0)
    owner.register_buffer(f"{attr_name}_scale", s0)
    owner.register_buffer(f"{attr_name}_zero_point", z0)
    with graph.inserting_after(attrs[0]):
        z_attr = graph.get_attr(f"{name}_zero_point")
        s_attr = graph.get_attr(f"{name}_scale")
    for write, chain in writes:
        _rewrite_write(model, write, chain, s_attr, z_attr, where)
    for reader, through in reads:
        with graph.inserting_before(reader):
            dq = graph.call_function(
                qd.dequantize_per_token.default,
                (attrs[0], s_attr, z_attr, -128, 127, torch.int8, torch.float32),
            )
        copy_meta(reader, dq)
        reader.replace_input_with(through, dq)


def convert_kv_cache_observer(model: GraphModule, node: Node, obs: Any) -> None:
    """Quantize the cache buffer written with the value ``node`` observes (once per buffer:
    later observers of the same buffer find their node already unused) and erase ``node``."""
    if node.users:
        (write,) = node.users
        where = f"convert_pt2e: KV cache observer '{node.target}' (write '{write.name}')"
        if write.target not in KV_WRITE_OPS or write.args[KV_WRITE_OPS[write.target]] is not node:
            raise KVCacheError(f"{where}: expected the value of an index_put_/index_copy_/copy_")
        buf_node, _ = _root(write.args[0], where)  # type: ignore[arg-type]
        _quantize_buffer(model, buf_node, where)
    model.graph.erase_node(node)
