"""``torch.ops.pt2q_arm_llm``: the LLM GEMM kernels as torch ops (``ext/llm_ops.cpp``), built on
first use next to the ``pt2q_arm`` extension and cached the same way, with fake kernels so a
lowered graph survives ``torch.export``.

* ``pack_qc8w(w int8 (N, K), scale (N), variant)``: f32-qc8w or qd8-f32-gemm packing
* ``pack_qc4w(w int8 (N, K), scale (N, G), extra int32 (N, G), group, variant)``: extra is the
  group's weight sum (qd8-f32-qc4w) or zero point (f32-qc4w)
* ``linear_qc8w(x f32, packed, bias?, n, variant)``, ``linear_qc4w(x f32, packed, bias?, n,
  group, variant)`` -> f32 (..., N)
* ``linear_qd8(xq int8, scale, zp, packed, bias?, n, group, variant)`` -> f32 (..., N): int8
  per-token activations (group 0: int8 per-channel weights, qd8-f32-gemm)
"""

from __future__ import annotations

import threading

import torch

from pt2q.lowering.arm.build import load_extension

__all__ = ["load_llm_ops"]

_LOCK = threading.Lock()
_LOADED = False


def _register_fakes() -> None:
    lib = "pt2q_arm_llm::"

    @torch.library.register_fake(lib + "linear_qc8w")
    def _qc8w(x, packed, bias, n, variant):
        return x.new_empty((*x.shape[:-1], n), dtype=torch.float32)

    @torch.library.register_fake(lib + "linear_qc4w")
    def _qc4w(x, packed, bias, n, group, variant):
        return x.new_empty((*x.shape[:-1], n), dtype=torch.float32)

    @torch.library.register_fake(lib + "linear_qd8")
    def _qd8(xq, scale, zp, packed, bias, n, group, variant):
        return xq.new_empty((*xq.shape[:-1], n), dtype=torch.float32)


def load_llm_ops() -> None:
    """Build (first call; cached across sessions) and load the extension, then register the
    fake kernels. Raises the build's error (with the compiler output) when it fails."""
    global _LOADED
    with _LOCK:
        if _LOADED:
            return
        load_extension("pt2q_arm_llm_ops", "llm_ops.cpp", "ext_llm")
        _register_fakes()
        _LOADED = True
