"""Backend-neutral reading of the LLM linear patterns (int8wo, int4wo, 8da8w, 8da4w) that the
x86 (``pt2q.lowering.x86.llm``) and ARM (``pt2q.lowering.arm.llm``) passes lower."""

from pt2q.lowering.llm.match import LlmLinear, LlmWeight, NotLlm, attr_value, llm_linear

__all__ = ["LlmLinear", "LlmWeight", "NotLlm", "attr_value", "llm_linear"]
