"""LLM schemes (int8wo, int4wo, 8da8w, 8da4w) on x86: packed weights for torch's CPU kernels.

``rewrite_llm_linears(gm, compute_dtype)`` is the graph pass the x86 lowering runs on its
private copy; ``lower_llm_linears(model, example_inputs)`` runs it alone as a lowering.
"""

from pt2q.lowering.llm.match import LlmLinear, NotLlm, llm_linear
from pt2q.lowering.x86.llm.pack import PackedWeight, pack_weight
from pt2q.lowering.x86.llm.rewrite import (
    COMPUTE_DTYPES,
    WEIGHT_BYTES_FACT,
    lower_llm_linears,
    rewrite_llm_linears,
)

__all__ = [
    "COMPUTE_DTYPES",
    "WEIGHT_BYTES_FACT",
    "LlmLinear",
    "NotLlm",
    "PackedWeight",
    "llm_linear",
    "lower_llm_linears",
    "pack_weight",
    "rewrite_llm_linears",
]
