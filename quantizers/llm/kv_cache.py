"""KVCacheQuantizer: int8 KV cache, one (scale, zero point) per token per head.

Annotates the value of every write into a mutable float buffer (or plain tensor attribute: the
lifted constants transformers' static cache exports to) of rank >= 2 (``index_put_``,
``index_copy_``, ``copy_`` into a slice of it), optionally only for the buffers named in
``buffer_names``, with a dynamic per-token ``KVCacheObserver`` spec. Convert then stores each
such buffer as int8 plus ``<name>_scale`` (f32) / ``<name>_zero_point`` (i32) buffers of shape
``cache.shape[:-1] + (1,)``, keeps the writes as in-place mutations of the three buffers and
dequantizes every read (program shape: ``pt2q.convert.kv_cache``). Compose it with the linear
quantizer::

    ComposableQuantizer([KVCacheQuantizer(), XNNPACKQuantizer().set_global(llm_config("8da4w"))])
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.fx import GraphModule, Node

from pt2q.convert.kv_cache import KV_VIEW_OPS, KV_WRITE_OPS, cache_tensor
from pt2q.observer.kv_cache import KVCacheObserver
from pt2q.quantizer import QuantizationSpec, Quantizer
from pt2q.quantizers.annotation import any_annotated, write_annotation

__all__ = ["KVCacheQuantizer", "kv_cache_spec"]


def kv_cache_spec() -> QuantizationSpec:
    """The spec on a cache write's value: dynamic int8 per token (``KVCacheObserver``)."""
    return QuantizationSpec(
        dtype=torch.int8,
        quant_min=-128,
        quant_max=127,
        is_dynamic=True,
        observer_or_fake_quant_ctr=KVCacheObserver,
    )


def _cache_buffer(model: GraphModule, dest: object) -> str | None:
    node = dest
    while isinstance(node, Node) and node.op == "call_function" and node.target in KV_VIEW_OPS:
        node = node.args[0]
    if not isinstance(node, Node) or node.op != "get_attr":
        return None
    name = str(node.target)
    cache = cache_tensor(model, name)
    if cache is None or not cache.is_floating_point() or cache.dim() < 2:
        return None
    return name


class KVCacheQuantizer(Quantizer):
    """See the module docstring. ``buffer_names`` (fully qualified, e.g.
    ``"layers.0.attn.k_cache"``) restricts which caches are quantized; None means all."""

    def __init__(self, buffer_names: Iterable[str] | None = None) -> None:
        super().__init__()
        self.buffer_names = None if buffer_names is None else frozenset(buffer_names)

    def annotate(self, model: GraphModule) -> GraphModule:
        spec = kv_cache_spec()
        for node in model.graph.nodes:
            if node.op != "call_function" or node.target not in KV_WRITE_OPS:
                continue
            name = _cache_buffer(model, node.args[0])
            if name is None or (self.buffer_names is not None and name not in self.buffer_names):
                continue
            value = node.args[KV_WRITE_OPS[node.target]]
            if isinstance(value, Node) and not any_annotated([node]):
                write_annotation(node, {value: spec})
        return model

    def validate(self, model: GraphModule) -> None:
        if self.buffer_names is None:
            return
        missing = sorted(n for n in self.buffer_names if cache_tensor(model, n) is None)
        if missing:
            raise ValueError(
                f"KVCacheQuantizer: buffer_names {missing} are not buffers (or tensor "
                f"attributes) of the model; its buffers are {sorted(dict(model.named_buffers()))}"
            )
