"""What this CPU's oneDNN int8 kernels can compute exactly, as data.

oneDNN runs u8 x s8 convolutions and matmuls with VNNI (``vpdpbusd``, 32-bit accumulation) on
AVX-512 VNNI / AVX-VNNI / AMX machines. Without VNNI it falls back to ``vpmaddubsw``, which adds
two u8*s8 products into a *saturating int16*: 255 * 127 * 2 = 64770 > 32767, so activations
that use the full uint8 range [0, 255] can saturate and the result is wrong by many
quantization steps (measured here on AVX2: 29.0 absolute on outputs of magnitude 178). With
``reduce_range`` activations ([0, 127]) the pair sum stays below 2**15 and the kernel is exact.

The lowering therefore asks :func:`max_exact_activation_qmax` before handing a node to oneDNN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["CpuInt8Isa", "detect_isa", "max_exact_activation_qmax"]

# Largest uint8 activation quant_max whose u8*s8 pair sums fit int16 without VNNI: 127 * 128 * 2
# = 32512 <= 32767 (weights are int8 in [-128, 127]).
_NO_VNNI_UINT8_QMAX = 127


@dataclass(frozen=True)
class CpuInt8Isa:
    """The int8-relevant instruction sets of the CPU running the lowered program."""

    vnni: bool  # AVX-512 VNNI or AVX-VNNI: exact int32 accumulation of u8*s8
    amx: bool  # AMX tiles (Sapphire Rapids and later): implies exact int32 accumulation
    avx512: bool

    @property
    def exact_u8s8(self) -> bool:
        """True when oneDNN accumulates u8*s8 in int32 without an int16 intermediate."""
        return self.vnni or self.amx

    def describe(self) -> str:
        """One line naming the relevant features, for reports and error messages."""
        flags = [
            name
            for name, on in (("avx512", self.avx512), ("vnni", self.vnni), ("amx", self.amx))
            if on
        ]
        return "+".join(flags) if flags else "avx2 (no vnni, no amx)"


def detect_isa() -> CpuInt8Isa:
    """Query the running CPU through torch's cpuinfo bindings (no compilation, no caching)."""
    return CpuInt8Isa(
        vnni=bool(torch.cpu._is_vnni_supported()),
        amx=bool(torch.cpu._is_amx_tile_supported()),
        avx512=bool(torch.cpu._is_avx512_supported()),
    )


def max_exact_activation_qmax(isa: CpuInt8Isa, dtype: torch.dtype) -> int:
    """Largest activation ``quant_max`` whose oneDNN int8 kernel is exact on ``isa``.

    ``dtype`` is the activation's quantized storage dtype (uint8 for the x86 quantizer).
    """
    if dtype == torch.uint8:
        return 255 if isa.exact_u8s8 else _NO_VNNI_UINT8_QMAX
    if dtype == torch.int8:
        return 127
    raise ValueError(
        f"max_exact_activation_qmax: expected an activation dtype torch.uint8 or torch.int8, "
        f"found {dtype}"
    )
