"""LLM schemes (int8wo, int4wo, 8da8w, 8da4w) on ARM: pt2q's NEON LLM GEMMs as torch ops.

``rewrite_llm_linears_arm(gm)`` is the graph pass the ARM lowering runs on its private copy;
``lower_llm_to_arm(model, example_inputs)`` runs it alone as a lowering.
"""

from pt2q.lowering.arm.llm.ops import load_llm_ops
from pt2q.lowering.arm.llm.rewrite import (
    WEIGHT_BYTES_FACT,
    lower_llm_to_arm,
    rewrite_llm_linears_arm,
)

__all__ = ["WEIGHT_BYTES_FACT", "load_llm_ops", "lower_llm_to_arm", "rewrite_llm_linears_arm"]
