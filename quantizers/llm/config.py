"""``llm_config(scheme, group_size=32)``: the LLM quantization schemes as ``QuantizationConfig``s.

Each config works with ``X86InductorQuantizer`` and ``XNNPACKQuantizer`` through ``set_global``
/ ``set_module_name`` / ``set_module_type`` (linear only: other weighted ops are left float with
a reason), and ``"embedding_4bit"`` with ``EmbeddingQuantizer``. ``is_qat=True`` gives the same
schemes with ``AffineFakeQuantize`` (groupwise / per-channel weights, per-token activations) for
``prepare_qat_pt2e``.

Reference programs after ``convert_pt2e`` (the contract the x86 / NEON lowerings match). ``W``
is the (N, K) weight folded to an integer constant (``get_attr``), ``g`` the group size, ``x``
the activation of shape (..., K) (2-D or 3-D), ``b`` the float bias (or None)::

  "int8wo"   int8 per-channel symmetric weight, float activations
      w_dq = dequantize_per_channel(W: int8 (N, K) in [-127, 127], scale: f32 (N,),
                                    zero_point: i64 (N,) zeros, 0, -127, 127, torch.int8)
      y    = linear(x, w_dq, b)

  "int4wo"   int4 per-group asymmetric weight (integer zero points), float activations
      w_dq = dequantize_per_channel_group(W: uint8 (N, K) in [0, 15], scale: f32 (N, K // g),
                                          zero_point: i32 (N, K // g) in [0, 15], 0, 15,
                                          torch.uint8, g, torch.float32)
      y    = linear(x, w_dq, b)

  "8da8w"    int8 per-token dynamic asymmetric activations, int8 per-channel symmetric weight
      qp   = choose_qparams_per_token_asymmetric(x, torch.int8)
      s, z = getitem(qp, 0): f64 (..., 1), getitem(qp, 1): i64 (..., 1)
      x_q  = quantize_per_token(x, s, z, -128, 127, torch.int8)
      x_dq = dequantize_per_token(x_q, s, z, -128, 127, torch.int8, torch.float32)
      w_dq = dequantize_per_channel(W: int8 (N, K) in [-127, 127], ... as "int8wo")
      y    = linear(x_dq, w_dq, b)

  "8da4w"    int8 per-token dynamic asymmetric activations, int4 per-group symmetric weight
      x_dq = ... as "8da8w"
      w_dq = dequantize_per_channel_group(W: int8 (N, K) in [-8, 7], scale: f32 (N, K // g),
                                          zero_point: i32 (N, K // g) zeros, -8, 7,
                                          torch.int8, g, torch.float32)
      y    = linear(x_dq, w_dq, b)

  "embedding_4bit"  (with EmbeddingQuantizer) int4 per-group symmetric table (V, D)
      t_dq = dequantize_per_channel_group(T: int8 (V, D) in [-8, 7], scale: f32 (V, D // g),
                                          zero_point: i32 (V, D // g) zeros, -8, 7,
                                          torch.int8, g, torch.float32)
      out  = embedding(t_dq, indices)

Int4 values stay one per int8 / uint8 element until a lowering packs them. Every consumer of a
quantized value has its own dequantize (one per linear), and nothing else is quantized: outputs,
residual adds, norms and attention stay float. Scales: weights use eps = 2**-12 (symmetric:
scale = max|w| / 127 for int8, max|w| / 7.5 for int4 ([-8, 7]); asymmetric int4: (max - min) / 15).
K (D) must be a multiple of ``g``; a linear whose K is not stays float with a reason. When
K == g (one group per row) the weight is per-channel: ``dequantize_per_channel`` on axis 0 with
the same dtype and range (the lowering sees a per-channel weight).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch

from pt2q.affine import MappingType, PerAxis, PerGroup, PerToken
from pt2q.affine.granularity import Granularity
from pt2q.quantizer import QuantizationConfig, QuantizationSpec

__all__ = ["LLM_SCHEMES", "llm_config"]

_WEIGHT_EPS = 2**-12


@dataclass(frozen=True)
class _WeightScheme:
    dtype: torch.dtype
    quant_min: int
    quant_max: int
    mapping: MappingType
    per_group: bool


@dataclass(frozen=True)
class _Scheme:
    weight: _WeightScheme
    dynamic_activations: bool


_INT8_CHANNEL = _WeightScheme(torch.int8, -127, 127, MappingType.SYMMETRIC, per_group=False)
_INT4_GROUP_SYM = _WeightScheme(torch.int8, -8, 7, MappingType.SYMMETRIC, per_group=True)
_INT4_GROUP_ASYM = _WeightScheme(torch.uint8, 0, 15, MappingType.ASYMMETRIC, per_group=True)

# scheme name -> what it quantizes (see the module docstring for the programs).
LLM_SCHEMES: dict[str, _Scheme] = {
    "int8wo": _Scheme(_INT8_CHANNEL, dynamic_activations=False),
    "int4wo": _Scheme(_INT4_GROUP_ASYM, dynamic_activations=False),
    "8da8w": _Scheme(_INT8_CHANNEL, dynamic_activations=True),
    "8da4w": _Scheme(_INT4_GROUP_SYM, dynamic_activations=True),
    "embedding_4bit": _Scheme(_INT4_GROUP_SYM, dynamic_activations=False),
}


def _weight_spec(w: _WeightScheme, group_size: int, is_qat: bool) -> QuantizationSpec:
    from pt2q import observer as obs

    granularity: Granularity = PerGroup(group_size) if w.per_group else PerAxis(0)
    kwargs: dict[str, Any] = {
        "mapping_type": w.mapping,
        "target_dtype": w.dtype,
        "granularity": granularity,
        "eps": _WEIGHT_EPS,
        "zero_point_dtype": torch.int32,
    }
    ctr: Any
    if is_qat:
        from pt2q.fake_quantize import AffineFakeQuantize

        # memoryless: the qparams follow the weights as they train
        observer = obs.AffineQuantizedMovingAverageMinMaxObserver.with_args(averaging_constant=1)
        ctr = AffineFakeQuantize.with_args(observer=observer, **kwargs)
    else:
        ctr = obs.AffineQuantizedMinMaxObserver.with_args(**kwargs)
    return QuantizationSpec(
        dtype=w.dtype,
        quant_min=w.quant_min,
        quant_max=w.quant_max,
        observer_or_fake_quant_ctr=ctr,
    )


def _dynamic_activation_spec(is_qat: bool) -> QuantizationSpec:
    from pt2q import observer as obs

    kwargs: dict[str, Any] = {
        "mapping_type": MappingType.ASYMMETRIC,
        "target_dtype": torch.int8,
        "granularity": PerToken(),
    }
    ctr: Any
    if is_qat:
        from pt2q.fake_quantize import AffineFakeQuantize

        ctr = AffineFakeQuantize.with_args(
            observer=obs.AffineQuantizedPlaceholderObserver, **kwargs
        )
    else:
        ctr = obs.AffineQuantizedPlaceholderObserver.with_args(**kwargs)
    return QuantizationSpec(
        dtype=torch.int8,
        quant_min=-128,
        quant_max=127,
        is_dynamic=True,
        observer_or_fake_quant_ctr=ctr,
    )


@functools.lru_cache
def llm_config(scheme: str, group_size: int = 32, is_qat: bool = False) -> QuantizationConfig:
    """The ``QuantizationConfig`` of ``scheme`` (one of ``LLM_SCHEMES``; programs in the module
    docstring). ``group_size`` applies to the per-group schemes (int4wo, 8da4w,
    embedding_4bit) and must be >= 2."""
    if scheme not in LLM_SCHEMES:
        raise ValueError(
            f"llm_config: unknown scheme {scheme!r}; expected one of {sorted(LLM_SCHEMES)}"
        )
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 2:
        raise ValueError(f"llm_config: group_size must be an int >= 2, got {group_size!r}")
    s = LLM_SCHEMES[scheme]
    act = _dynamic_activation_spec(is_qat) if s.dynamic_activations else None
    return QuantizationConfig(act, None, _weight_spec(s.weight, group_size, is_qat), None, is_qat)
