"""LLM quantization: the ``llm_config`` schemes (groupwise int4 / int8 weights, per-token
dynamic activations) and KV-cache quantization."""

from pt2q.quantizers.llm.config import LLM_SCHEMES, llm_config
from pt2q.quantizers.llm.kv_cache import KVCacheQuantizer, kv_cache_spec

__all__ = ["KVCacheQuantizer", "LLM_SCHEMES", "kv_cache_spec", "llm_config"]
