"""``package_x86``: compile once, deploy anywhere, as an AOTInductor ``.pt2`` package.

The guarded copy of the reference program (the same one the lowering's compiled tiers hand to
Inductor: dangling q/dq removed, activation forms chosen for the CPU it is packaged on, uint8
max-pools on the uint8 values) is exported and compiled
ahead of time with Inductor freezing, so its int8 passes emit the oneDNN kernels
(``onednn.qconv_pointwise`` / ``qlinear_pointwise``, prepacked weights baked in) and fuse the rest
into C++. The package holds only aten / oneDNN calls: ``torch._inductor.aoti_load_package(path)``
runs it in a process that never imports pt2q. Dims exported as ``torch.export.Dim`` stay dynamic.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.fx import GraphModule

from pt2q.lowering.x86.isa import CpuInt8Isa
from pt2q.lowering.x86.lower import compiled_program, prepare_for_inductor
from pt2q.lowering.x86.module import aoti_compile

__all__ = ["package_x86"]


def package_x86(
    converted: GraphModule | torch.export.ExportedProgram,
    example_inputs: tuple[Any, ...],
    path: str | os.PathLike[str],
    *,
    isa: CpuInt8Isa | None = None,
    payoff: bool = True,
    llm_compute_dtype: torch.dtype = torch.bfloat16,
) -> str:
    """Write the AOTInductor package of ``converted``'s int8 lowering to ``path``; return it.
    ``isa``, ``payoff``, ``llm_compute_dtype``: as ``lower_pt2e_quantized_to_x86``'s."""
    path = os.fspath(path)
    if not path.endswith(".pt2"):
        raise ValueError(
            f"package_x86: path must end with .pt2 (AOTInductor package), got {path!r}"
        )
    guarded, _, inputs, dims = prepare_for_inductor(
        converted, example_inputs, isa, payoff, llm_compute_dtype
    )
    return aoti_compile(compiled_program(guarded), inputs, dims, path)[0]
