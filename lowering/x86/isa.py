"""What this CPU's oneDNN int8 kernels can compute exactly, as data.

oneDNN runs u8 x s8 convolutions and matmuls with VNNI (``vpdpbusd``, 32-bit accumulation) on
AVX-512 VNNI / AVX-VNNI / AMX machines. Without VNNI it falls back to ``vpmaddubsw``, which adds
two u8*s8 products into a *saturating int16*: 255 * 127 * 2 = 64770 > 32767, so activations
that use the full uint8 range [0, 255] can saturate and the result is wrong by many
quantization steps (measured here on AVX2: 29.0 absolute on outputs of magnitude 178). With
``reduce_range`` activations ([0, 127]) the pair sum stays below 2**15 and the kernel is exact.

The lowering therefore asks :func:`max_exact_activation_qmax` before handing a node to oneDNN.

oneDNN can be told to use less than the CPU has (``ONEDNN_MAX_CPU_ISA``, or the older
``DNNL_MAX_CPU_ISA``, read once per process): ``ONEDNN_MAX_CPU_ISA=AVX2`` on a VNNI machine
makes every int8 kernel ``vpmaddubsw``-based. :func:`detect_isa` takes that cap into account, so
the lowering then adapts full-range activations as on an AVX2 CPU (without it, oneDNN would
saturate them silently), and tests can check the saturating model against oneDNN's real AVX2
kernels on this machine (``tests/x86/test_capped_isa.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

import torch

__all__ = ["CpuInt8Isa", "detect_isa", "max_exact_activation_qmax", "onednn_isa_cap"]

# Largest uint8 activation quant_max whose u8*s8 pair sums fit int16 without VNNI: 127 * 128 * 2
# = 32512 <= 32767 (weights are int8 in [-128, 127]).
_NO_VNNI_UINT8_QMAX = 127


@dataclass(frozen=True)
class CpuInt8Isa:
    """The int8-relevant instruction sets of the CPU running the lowered program."""

    vnni: bool  # AVX-512 VNNI or AVX-VNNI: exact int32 accumulation of u8*s8
    amx: bool  # AMX tiles (Sapphire Rapids and later): implies exact int32 accumulation
    avx512: bool
    cap: str | None = None  # "ONEDNN_MAX_CPU_ISA=AVX2" when oneDNN is capped below the CPU

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
        text = "+".join(flags) if flags else "avx2 (no vnni, no amx)"
        return f"{text}, capped by {self.cap}" if self.cap else text


# oneDNN's ISA names (dnnl_cpu_isa_t, case-insensitive) -> (vnni, amx, avx512) they allow.
# ALL / DEFAULT: no cap. Names oneDNN does not know leave the CPU's facts unchanged (oneDNN
# ignores them too).
_ONEDNN_ISAS: dict[str, tuple[bool, bool, bool]] = {
    "SSE41": (False, False, False),
    "AVX": (False, False, False),
    "AVX2": (False, False, False),
    "AVX2_VNNI": (True, False, False),
    "AVX2_VNNI_2": (True, False, False),
    "AVX512_CORE": (False, False, True),
    "AVX512_CORE_VNNI": (True, False, True),
    "AVX512_CORE_BF16": (True, False, True),
    "AVX512_CORE_FP16": (True, False, True),
    "AVX10_1_512": (True, False, True),
    "AVX512_CORE_AMX": (True, True, True),
    "AVX10_1_512_AMX": (True, True, True),
    "AVX512_CORE_AMX_FP16": (True, True, True),
    "AVX10_1_512_AMX_FP16": (True, True, True),
    "AVX10_2_512": (True, False, True),
    "AVX10_2_512_AMX_2": (True, True, True),
}


def onednn_isa_cap(
    environ: Mapping[str, str] | None = None,
) -> tuple[str, tuple[bool, bool, bool]] | None:
    """``("ONEDNN_MAX_CPU_ISA=AVX2", (vnni, amx, avx512) allowed)`` when the environment caps
    oneDNN's ISA (``ONEDNN_MAX_CPU_ISA`` first, then ``DNNL_MAX_CPU_ISA``, as oneDNN reads
    them); None when it does not (unset, ``ALL``, ``DEFAULT`` or a name oneDNN does not know)."""
    env = os.environ if environ is None else environ
    for var in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        value = env.get(var, "").strip()
        if value:
            allowed = _ONEDNN_ISAS.get(value.upper())
            return (f"{var}={value}", allowed) if allowed is not None else None
    return None


def detect_isa() -> CpuInt8Isa:
    """Query the running CPU through torch's cpuinfo bindings (no compilation, no caching),
    limited by ``ONEDNN_MAX_CPU_ISA`` / ``DNNL_MAX_CPU_ISA`` when set (:func:`onednn_isa_cap`)."""
    cpu = CpuInt8Isa(
        vnni=bool(torch.cpu._is_vnni_supported()),
        amx=bool(torch.cpu._is_amx_tile_supported()),
        avx512=bool(torch.cpu._is_avx512_supported()),
    )
    cap = onednn_isa_cap()
    if cap is None:
        return cpu
    name, (vnni, amx, avx512) = cap
    capped = replace(cpu, vnni=cpu.vnni and vnni, amx=cpu.amx and amx, avx512=cpu.avx512 and avx512)
    return replace(capped, cap=name) if capped != cpu else cpu


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
