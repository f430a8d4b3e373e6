"""Quantizers (``pt2q.quantizers``): X86Inductor, XNNPACK-style, Embedding, Composable.

All match patterns on the exported aten graph using the shared op tables (``op_tables``) and
one annotator per pattern family (``annotators/``). After ``annotate``, ``coverage(gm)`` (or
``quantizer.coverage(gm)``) reports which ops are quantized and why the others stay float.
"""

from pt2q.quantizers.composable_quantizer import AnnotationConflictError, ComposableQuantizer
from pt2q.quantizers.coverage import (
    CoverageReport,
    NodeCoverage,
    NothingQuantizedError,
    NothingQuantizedWarning,
    coverage,
)
from pt2q.quantizers.embedding_quantizer import (
    EmbeddingQuantizer,
    get_embedding_operators_config,
)
from pt2q.quantizers.llm import LLM_SCHEMES, KVCacheQuantizer, llm_config
from pt2q.quantizers.x86_inductor_quantizer import (
    X86InductorQuantizer,
    get_default_x86_inductor_quantization_config,
    get_x86_inductor_linear_dynamic_fp16_config,
)
from pt2q.quantizers.xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config

__all__ = [
    "AnnotationConflictError",
    "ComposableQuantizer",
    "CoverageReport",
    "EmbeddingQuantizer",
    "KVCacheQuantizer",
    "LLM_SCHEMES",
    "NodeCoverage",
    "NothingQuantizedError",
    "NothingQuantizedWarning",
    "X86InductorQuantizer",
    "XNNPACKQuantizer",
    "coverage",
    "get_default_x86_inductor_quantization_config",
    "get_embedding_operators_config",
    "get_symmetric_quantization_config",
    "get_x86_inductor_linear_dynamic_fp16_config",
    "llm_config",
]
