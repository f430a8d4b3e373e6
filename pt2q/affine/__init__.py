"""Affine quantization: granularities, mapping types, block sizes and the quant primitives.

The base of the LLM schemes (``pt2q.quantizers.llm_config``): the observers in
``pt2q.observer.affine`` and ``AffineFakeQuantize`` compute qparams with these formulas, and
convert writes them as ``quantized_decomposed`` per-tensor / per-channel / per-channel-group /
per-token q/dq ops (``pt2q.convert.affine``).
"""

from pt2q.affine.block_size import get_block_size, qparams_shape, reduction_shape
from pt2q.affine.granularity import (
    Granularity,
    PerAxis,
    PerBlock,
    PerGroup,
    PerRow,
    PerTensor,
    PerToken,
)
from pt2q.affine.mapping import MappingType, TorchAODType, ZeroPointDomain
from pt2q.affine.primitives import (
    block_min_max,
    choose_qparams_affine,
    choose_qparams_affine_with_min_max,
    dequantize_affine,
    fake_quantize_affine,
    quantize_affine,
)
from pt2q.affine.target_dtype import resolve_range, storage_of

__all__ = [
    "Granularity",
    "MappingType",
    "PerAxis",
    "PerBlock",
    "PerGroup",
    "PerRow",
    "PerTensor",
    "PerToken",
    "TorchAODType",
    "ZeroPointDomain",
    "block_min_max",
    "choose_qparams_affine",
    "choose_qparams_affine_with_min_max",
    "dequantize_affine",
    "fake_quantize_affine",
    "get_block_size",
    "qparams_shape",
    "quantize_affine",
    "reduction_shape",
    "resolve_range",
    "storage_of",
]
