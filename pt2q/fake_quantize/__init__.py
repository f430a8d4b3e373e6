"""Fake-quantizers for QAT, owned by pt2q (names and signatures of torchao's ``fake_quantize``)."""

from pt2q.fake_quantize.affine import (
    AffineFakeQuantize,
    default_affine_fake_quant,
    default_affine_per_axis_fake_quant,
    default_groupwise_fake_quant,
)
from pt2q.fake_quantize.base import (
    FakeQuantizeBase,
    disable_fake_quant,
    disable_observer,
    enable_fake_quant,
    enable_observer,
)
from pt2q.fake_quantize.defaults import (
    default_affine_fixed_qparams_fake_quant,
    default_dynamic_fake_quant,
    default_embedding_fake_quant,
    default_embedding_fake_quant_4bit,
    default_fake_quant,
    default_fixed_qparams_range_0to1_fake_quant,
    default_fixed_qparams_range_neg1to1_fake_quant,
    default_fused_act_fake_quant,
    default_fused_per_channel_wt_fake_quant,
    default_fused_wt_fake_quant,
    default_histogram_fake_quant,
    default_per_channel_weight_fake_quant,
    default_symmetric_fixed_qparams_fake_quant,
    default_weight_fake_quant,
    fused_per_channel_wt_fake_quant_range_neg_127_to_127,
    fused_wt_fake_quant_range_neg_127_to_127,
)
from pt2q.fake_quantize.fake_quantize import FakeQuantize
from pt2q.fake_quantize.fixed_qparams import FixedQParamsFakeQuantize
from pt2q.fake_quantize.fused import FusedMovingAvgObsFakeQuantize
from pt2q.fake_quantize.learnable import (
    LearnableFakeQuantize,
    disable_range_learning,
    enable_range_learning,
)

__all__ = [
    "LearnableFakeQuantize",
    "disable_range_learning",
    "enable_range_learning",
    "default_affine_fixed_qparams_fake_quant",
    "default_symmetric_fixed_qparams_fake_quant",
    "AffineFakeQuantize",
    "default_affine_fake_quant",
    "default_affine_per_axis_fake_quant",
    "default_groupwise_fake_quant",
    "FakeQuantize",
    "FakeQuantizeBase",
    "FixedQParamsFakeQuantize",
    "FusedMovingAvgObsFakeQuantize",
    "disable_fake_quant",
    "disable_observer",
    "enable_fake_quant",
    "enable_observer",
    "default_dynamic_fake_quant",
    "default_embedding_fake_quant",
    "default_embedding_fake_quant_4bit",
    "default_fake_quant",
    "default_fixed_qparams_range_0to1_fake_quant",
    "default_fixed_qparams_range_neg1to1_fake_quant",
    "default_fused_act_fake_quant",
    "default_fused_per_channel_wt_fake_quant",
    "default_fused_wt_fake_quant",
    "default_histogram_fake_quant",
    "default_per_channel_weight_fake_quant",
    "default_weight_fake_quant",
    "fused_per_channel_wt_fake_quant_range_neg_127_to_127",
    "fused_wt_fake_quant_range_neg_127_to_127",
]
