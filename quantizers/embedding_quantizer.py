"""EmbeddingQuantizer: weight-only, per-row quantization of embedding / embedding_bag tables.

Config (torchao's): uint8 weight, ``per_channel_affine_float_qparams`` on axis 0 (one float
scale and zero point per row), PerChannelMinMaxObserver with eps 2**-12; indices and outputs
stay as they are. Other ops are left to other quantizers (compose with ComposableQuantizer).
"""

from __future__ import annotations

import functools

import torch
from torch.fx import GraphModule

from pt2q.quantizer import QuantizationConfig, QuantizationSpec, Quantizer
from pt2q.quantizers.annotators.embedding import annotate_embedding
from pt2q.quantizers.config_rules import ConfigRules
from pt2q.quantizers.coverage import CoverageReport, coverage

__all__ = ["EmbeddingQuantizer", "get_embedding_operators_config"]


@functools.lru_cache
def get_embedding_operators_config() -> QuantizationConfig:
    """The weight-only per-row config (see module docstring)."""
    from pt2q.observer import PerChannelMinMaxObserver

    weight = QuantizationSpec(
        dtype=torch.uint8,
        qscheme=torch.per_channel_affine_float_qparams,
        ch_axis=0,  # (num_embeddings, dim): one qparam pair per row
        observer_or_fake_quant_ctr=PerChannelMinMaxObserver.with_args(eps=2**-12),
    )
    return QuantizationConfig(None, None, weight, None)


class EmbeddingQuantizer(Quantizer):
    """Annotates the weight of every embedding / embedding_bag; nothing else."""

    def __init__(self, config: QuantizationConfig | None = None) -> None:
        super().__init__()
        self.rules = ConfigRules(global_config=config or get_embedding_operators_config())

    def annotate(self, model: GraphModule) -> GraphModule:
        annotate_embedding(model, self.rules)
        return model

    def validate(self, model: GraphModule) -> None:
        return

    def coverage(self, model: GraphModule) -> CoverageReport:
        return coverage(model)
