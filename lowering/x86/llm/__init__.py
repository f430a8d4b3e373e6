"""LLM schemes (int8wo, int4wo, 8da8w, 8da4w) on x86: packed weights for torch's CPU kernels.

``apply_llm_pass(gm)`` (``rewrite_llm_linears`` keeping its decisions on ``gm``) is the step
``lower_pt2e_quantized_to_x86`` runs on its private copy, ``merge_llm_report`` puts them in its
report; ``lower_llm_linears(model, example_inputs)`` runs the pass alone as a lowering.
"""

from pt2q.lowering.llm.match import LlmLinear, NotLlm, llm_linear
from pt2q.lowering.x86.llm.pack import PackedWeight, pack_weight
from pt2q.lowering.x86.llm.rewrite import (
    COMPUTE_DTYPES,
    WEIGHT_BYTES_FACT,
    apply_llm_pass,
    lower_llm_linears,
    merge_llm_report,
    rewrite_llm_linears,
)

__all__ = [
    "COMPUTE_DTYPES",
    "WEIGHT_BYTES_FACT",
    "LlmLinear",
    "apply_llm_pass",
    "merge_llm_report",
    "NotLlm",
    "PackedWeight",
    "llm_linear",
    "lower_llm_linears",
    "pack_weight",
    "rewrite_llm_linears",
]
