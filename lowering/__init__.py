"""Backends for converted (reference) programs: x86 via Inductor's oneDNN int8 passes, ARM via
pt2q's NEON kernels. Each backend imports lazily so that using one never loads the other."""

from __future__ import annotations

from typing import Any

__all__ = ["lower_pt2e_quantized_to_x86", "lower_pt2e_quantized_to_arm"]


def __getattr__(name: str) -> Any:
    if name == "lower_pt2e_quantized_to_x86":
        from pt2q.lowering.x86 import lower_pt2e_quantized_to_x86

        return lower_pt2e_quantized_to_x86
    if name == "lower_pt2e_quantized_to_arm":
        from pt2q.lowering.arm import lower_pt2e_quantized_to_arm

        return lower_pt2e_quantized_to_arm
    raise AttributeError(f"module 'pt2q.lowering' has no attribute {name!r}")
