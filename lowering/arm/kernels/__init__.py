"""The one list of pt2q ARM micro-kernels: it drives the build, the C test driver and dispatch.

Each ``Kernel`` names a C file under this folder, its public symbol, the ISA it needs and its
tile. ``SUPPORT_SOURCES`` are helpers (packing, indirection) compiled into every build.
The scalar variant of each family is the reference (the spec) the others are checked against.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "KERNEL_DIR",
    "ISAS",
    "ISA_MARCH",
    "Kernel",
    "KERNELS",
    "SUPPORT_SOURCES",
    "FAMILIES",
    "variants",
]

KERNEL_DIR = Path(__file__).resolve().parent

# Ordered from weakest to strongest: a CPU that has an ISA has all the ones before it.
ISAS = ("scalar", "neon", "dot", "i8mm")

# -march used to compile a file of that ISA for aarch64 (so a baseline file never picks up a
# dotprod/i8mm instruction by auto-vectorisation and runs on a cortex-a53).
ISA_MARCH = {
    "scalar": "armv8-a",
    "neon": "armv8-a",
    "dot": "armv8.2-a+dotprod",
    "i8mm": "armv8.2-a+dotprod+i8mm",
}


@dataclass(frozen=True)
class Kernel:
    """One micro-kernel variant.

    ``tile`` is family specific: GEMM (mr, nr, kr) with weights packed for (nr, kr); dwconv
    (cr,) with weights packed for cr channels; elementwise/pool kernels (elements per step,).
    """

    family: str
    variant: str
    source: str
    symbol: str
    isa: str
    tile: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.isa not in ISAS:
            raise ValueError(f"Kernel {self.symbol}: isa must be one of {ISAS}, got {self.isa!r}")
        if not (KERNEL_DIR / self.source).is_file():
            raise FileNotFoundError(f"Kernel {self.symbol}: source {self.source} does not exist")


def _k(family: str, variant: str, isa: str, tile: tuple[int, ...]) -> Kernel:
    datatype, _, fam = family.rpartition("-")
    if variant == "scalar":
        symbol = f"pt2q_{datatype.replace('-', '_')}_{fam}_ukernel__scalar"
    else:
        t, _, tech = variant.partition("-")
        symbol = f"pt2q_{datatype.replace('-', '_')}_{fam}_ukernel_{t}__{tech.replace('-', '_')}"
    return Kernel(family, variant, f"{family}/{variant}.c", symbol, isa, tile)


KERNELS: tuple[Kernel, ...] = (
    _k("qs8-gemm", "scalar", "scalar", (1, 1, 1)),
    _k("qs8-gemm", "4x8-neon-mlal", "neon", (4, 8, 1)),
    _k("qs8-gemm", "4x8-neon-dot", "dot", (4, 8, 4)),
    _k("qs8-gemm", "4x16-neon-dot", "dot", (4, 16, 4)),
    _k("qs8-gemm", "4x8-neon-i8mm", "i8mm", (4, 8, 8)),
    _k("qs8-gemm", "4x16-neon-i8mm", "i8mm", (4, 16, 8)),
    _k("qd8-f32-gemm", "scalar", "scalar", (1, 1, 1)),
    _k("qd8-f32-gemm", "4x16-neon-dot", "dot", (4, 16, 4)),
    _k("qd8-f32-qc4w-gemm", "scalar", "scalar", (1, 1, 1)),
    _k("qd8-f32-qc4w-gemm", "6x8-neon-dot", "dot", (6, 8, 4)),
    _k("qd8-f32-qc4w-gemm", "10x4-neon-i8mm", "i8mm", (10, 4, 8)),
    _k("f32-qc8w-gemm", "scalar", "scalar", (1, 1, 1)),
    _k("f32-qc8w-gemm", "4x8-neon", "neon", (4, 8, 1)),
    _k("f32-qc4w-gemm", "scalar", "scalar", (1, 1, 1)),
    _k("f32-qc4w-gemm", "4x8-neon", "neon", (4, 8, 1)),
    _k("qs8-dwconv", "scalar", "scalar", (1,)),
    _k("qs8-dwconv", "c8-neon-mlal", "neon", (8,)),
    _k("x8-im2col", "scalar", "scalar", (1,)),
    _k("qs8-vadd", "scalar", "scalar", (1,)),
    _k("qs8-vadd", "x16-neon", "neon", (16,)),
    _k("qs8-vmul", "scalar", "scalar", (1,)),
    _k("qs8-vmul", "x16-neon", "neon", (16,)),
    _k("s8-maxpool", "scalar", "scalar", (1,)),
    _k("s8-maxpool", "c16-neon", "neon", (16,)),
    _k("qs8-avgpool", "scalar", "scalar", (1,)),
    _k("qs8-avgpool", "c8-neon", "neon", (8,)),
    _k("f32-qs8-vcvt", "scalar", "scalar", (1,)),
    _k("f32-qs8-vcvt", "x16-neon", "neon", (16,)),
    _k("qs8-f32-vcvt", "scalar", "scalar", (1,)),
    _k("qs8-f32-vcvt", "x16-neon", "neon", (16,)),
    _k("qs8-vcvt", "scalar", "scalar", (1,)),
    _k("qs8-vcvt", "x16-neon", "neon", (16,)),
)

SUPPORT_SOURCES: tuple[str, ...] = (
    "qs8-gemm/pack.c",
    "qd8-f32-qc4w-gemm/pack.c",
    "qs8-dwconv/pack.c",
    "x8-im2col/indirection.c",
)

FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(k.family for k in KERNELS))


def variants(family: str) -> tuple[Kernel, ...]:
    """The variants of ``family``, scalar reference first; raises KeyError on an unknown one."""
    found = tuple(k for k in KERNELS if k.family == family)
    if not found:
        raise KeyError(f"unknown kernel family {family!r}; known: {FAMILIES}")
    return found
