"""KVCacheObserver: marks the value written into a KV-cache buffer for int8 per-token
quantization of the whole buffer at convert (``pt2q.convert.kv_cache``).

Dynamic and statistic-free (qparams are chosen per token when the value is written):
``AffineQuantizedPlaceholderObserver`` with ASYMMETRIC int8 [-128, 127] per token (reduced over
the last dim, head_dim). In the prepared model it passes values through unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.affine.granularity import PerToken
from pt2q.affine.mapping import MappingType
from pt2q.observer.affine import AffineQuantizedPlaceholderObserver

__all__ = ["KVCacheObserver"]


class KVCacheObserver(AffineQuantizedPlaceholderObserver):
    """See the module docstring; extra keyword arguments from the spec (dtype, range) must
    agree with int8 [-128, 127]."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("mapping_type", MappingType.ASYMMETRIC)
        kwargs.setdefault("target_dtype", torch.int8)
        kwargs.setdefault("granularity", PerToken())
        super().__init__(**kwargs)
        if (self.dtype, self.quant_min, self.quant_max) != (torch.int8, -128, 127):
            raise ValueError(
                "KVCacheObserver: the cache is int8 in [-128, 127], got "
                f"{self.dtype} in [{self.quant_min}, {self.quant_max}]"
            )

    def convert(self, model: GraphModule, observer_node: Node) -> None:
        """Quantize the written buffer (``pt2q.convert.kv_cache``)."""
        from pt2q.convert.kv_cache import convert_kv_cache_observer

        convert_kv_cache_observer(model, observer_node, self)
