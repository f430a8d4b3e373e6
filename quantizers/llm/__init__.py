"""LLM quantization: the ``llm_config`` schemes (groupwise int4 / int8 weights, per-token
dynamic activations) and KV-cache quantization."""

from pt2q.quantizers.llm.config import LLM_SCHEMES, llm_config

__all__ = ["LLM_SCHEMES", "llm_config"]
