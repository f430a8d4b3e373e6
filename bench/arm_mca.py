"""llvm-mca throughput of each qs8 GEMM variant's inner loop (no ARM hardware needed).

Compiles every ``qs8-gemm`` variant of the kernel list with ``aarch64-linux-gnu-gcc -O2 -S``
(each with its ISA's ``-march``), cuts out the innermost loop (the block holding the MAC
instructions, up to its backward branch), runs ``llvm-mca -mcpu=<core>`` on it and prints
MACs per cycle against that core's peak for the variant's instruction (SMLAL, SDOT, SMMLA).

The peak is measured on the same llvm-mca model, from a loop of 16 independent MAC
instructions (no loads, no dependency chains), so "% of peak" compares like with like; the
documented pipe counts of each core are in ``CORES`` and in ``lowering/arm/README.md``. i8mm
variants are only run on cores that implement SMMLA (``CORES[...].i8mm``). These are static
estimates of a steady-state loop (L1-resident data), not measurements.

    python bench/arm_mca.py [--cpus neoverse-n1 cortex-a76 neoverse-n2 neoverse-v1] [--check]

``--check`` exits 1 unless the issue's goals hold: the best ``dot`` variant >= 85% of the
SDOT peak on neoverse-n1 and cortex-a76, and the best ``i8mm`` variant >= 1.6x the best
``dot`` variant (MACs/cycle, same core) on every i8mm core measured.

``--family qd8-f32-qc4w-gemm`` models the 8da4w GEMM instead (its ``dot`` / ``i8mm``
variants); its goals (issue 15): the ``dot`` inner loop >= 80% of the SDOT peak on
neoverse-n1, the ``i8mm`` one >= 80% of the SMMLA peak on neoverse-n2.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pt2q.lowering.arm.kernels import ISA_MARCH, KERNEL_DIR, Kernel, variants

# MACs per instruction: SMLAL/SMLAL2 .4s (4 lanes), SDOT .4s (4 lanes x 4), SMMLA (2x8 by 8x2).
MAC_PER_INSN = {"smlal": 4, "smlal2": 4, "sdot": 16, "smmla": 32}
# The MAC instruction of each ISA level and a register-only form of it for the peak loop.
ISA_INSN = {"neon": "smlal", "dot": "sdot", "i8mm": "smmla"}
PEAK_FORM = {
    "smlal": "smlal v{i}.4s, v0.4h, v1.h[0]",  # by-element .h needs a source in v0-v15
    "sdot": "sdot v{i}.4s, v0.16b, v1.4b[0]",
    "smmla": "smmla v{i}.4s, v0.16b, v1.16b",
}
DOT_GOAL = 0.85  # best dot variant, fraction of the SDOT peak (N1, A76)
I8MM_GOAL = 1.6  # best i8mm variant over best dot variant, same core
DOT_GOAL_CORES = ("neoverse-n1", "cortex-a76")
# qd8-f32-qc4w-gemm (8da4w, nibbles unpacked in the loop): fraction of the variant's own peak
QC4W_GOALS = {("dot", "neoverse-n1"): 0.80, ("i8mm", "neoverse-n2"): 0.80}


@dataclass(frozen=True)
class Core:
    """What the hardware documentation says (Arm software optimization guides)."""

    i8mm: bool
    pipes: str


CORES: dict[str, Core] = {
    "neoverse-n1": Core(False, "2 ASIMD pipes (V0, V1): 2 SDOT/cycle = 32 MACs/cycle"),
    "cortex-a76": Core(False, "2 ASIMD pipes (V0, V1): 2 SDOT/cycle = 32 MACs/cycle"),
    "neoverse-n2": Core(True, "2 ASIMD pipes (V0, V1): 2 SDOT or 2 SMMLA/cycle = 32 / 64"),
    "neoverse-v1": Core(True, "4 ASIMD pipes (V0-V3): 4 SDOT/cycle = 64 MACs/cycle"),
}


def llvm_mca() -> str | None:
    for name in ("llvm-mca-19", "llvm-mca-18", "llvm-mca-17", "llvm-mca-16", "llvm-mca"):
        if shutil.which(name):
            return name
    return None


def inner_loop(asm: str) -> list[str]:
    """Instructions of the loop that contains the MACs: from its label to the branch back."""
    lines = asm.splitlines()
    mac = next(i for i, ln in enumerate(lines) if ln.split() and ln.split()[0] in MAC_PER_INSN)
    start = max(i for i in range(mac) if re.match(r"^\.L\w+:", lines[i]))
    label = lines[start].rstrip(":")
    end = next(
        i for i in range(mac, len(lines)) if re.search(rf"\s{re.escape(label)}\s*$", lines[i])
    )
    return [
        ln for ln in lines[start + 1 : end + 1] if ln.strip() and not ln.strip().startswith(".")
    ]


def macs_of(loop: list[str]) -> int:
    """MACs one pass of ``loop`` performs (sum over its MAC instructions)."""
    return sum(MAC_PER_INSN.get(ln.split()[0], 0) for ln in loop)


def mca(asm_loop: list[str], cpu: str, tool: str, iterations: int = 500) -> float:
    """llvm-mca cycles per loop iteration (steady state over ``iterations``)."""
    with tempfile.NamedTemporaryFile("w", suffix=".s") as f:
        f.write("\n".join(asm_loop) + "\n")
        f.flush()
        cmd = [
            tool,
            "-mtriple=aarch64",
            f"-mcpu={cpu}",
            "-mattr=+dotprod,+i8mm",
            f"-iterations={iterations}",
            f.name,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return int(re.search(r"Total Cycles:\s+(\d+)", out).group(1)) / iterations


def model_peak(insn: str, cpu: str, tool: str) -> float:
    """MACs/cycle of 16 independent ``insn`` per iteration on ``cpu``'s llvm-mca model."""
    loop = [PEAK_FORM[insn].format(i=16 + i) for i in range(16)]
    return 16 * MAC_PER_INSN[insn] / mca(loop, cpu, tool)


def compile_loop(k: Kernel) -> list[str]:
    """The MAC loop of ``k`` as gcc emits it for ``k``'s ISA."""
    with tempfile.TemporaryDirectory() as tmp:
        s = Path(tmp) / "k.s"
        cmd = ["aarch64-linux-gnu-gcc", "-O2", "-S", "-ffp-contract=off"]
        cmd += [f"-march={ISA_MARCH[k.isa]}", f"-I{KERNEL_DIR / 'common'}"]
        subprocess.run([*cmd, "-o", str(s), str(KERNEL_DIR / k.source)], check=True)
        return inner_loop(s.read_text())


@dataclass(frozen=True)
class Row:
    variant: str
    isa: str
    cpu: str
    macs: int
    cycles: float
    rate: float
    peak: float
    sdot_peak: float


def measure(cpus: list[str], tool: str, family: str = "qs8-gemm") -> list[Row]:
    """One ``Row`` per (non-scalar GEMM variant of ``family``, core that implements its ISA);
    families other than qs8-gemm contribute their integer-MAC (dot / i8mm) variants."""
    peaks = {(insn, cpu): model_peak(insn, cpu, tool) for insn in PEAK_FORM for cpu in cpus}
    rows = []
    for k in variants(family):
        if k.isa == "scalar" or (family != "qs8-gemm" and k.isa not in ("dot", "i8mm")):
            continue
        loop = compile_loop(k)
        macs = macs_of(loop)
        for cpu in cpus:
            if k.isa == "i8mm" and not CORES.get(cpu, Core(True, "")).i8mm:
                continue
            cycles = mca(loop, cpu, tool)
            peak = peaks[(ISA_INSN[k.isa], cpu)]
            rows.append(
                Row(k.variant, k.isa, cpu, macs, cycles, macs / cycles, peak, peaks[("sdot", cpu)])
            )
    return rows


def goals(rows: list[Row]) -> list[tuple[str, bool]]:
    """(description, met) for the issue's goals, on the cores present in ``rows``."""
    best = {}
    for r in rows:
        best[(r.isa, r.cpu)] = max(best.get((r.isa, r.cpu), r), r, key=lambda x: x.rate)
    out = []
    for cpu in DOT_GOAL_CORES:
        if ("dot", cpu) in best:
            b = best[("dot", cpu)]
            frac = b.rate / b.sdot_peak
            out.append(
                (
                    f"{cpu}: best dot {b.variant} = {100 * frac:.0f}% of SDOT peak "
                    f"(goal {100 * DOT_GOAL:.0f}%)",
                    frac >= DOT_GOAL,
                )
            )
    for (isa, cpu), b in sorted(best.items()):
        if isa == "i8mm" and ("dot", cpu) in best:
            d = best[("dot", cpu)]
            ratio = b.rate / d.rate
            out.append(
                (
                    f"{cpu}: best i8mm {b.variant} / best dot {d.variant} = {ratio:.2f}x "
                    f"(goal {I8MM_GOAL}x)",
                    ratio >= I8MM_GOAL,
                )
            )
    return out


def qc4w_goals(rows: list[Row]) -> list[tuple[str, bool]]:
    """(description, met) for the qd8-f32-qc4w-gemm goals on the cores present in ``rows``."""
    out = []
    for r in rows:
        goal = QC4W_GOALS.get((r.isa, r.cpu))
        if goal is not None:
            frac = r.rate / r.peak
            text = (
                f"{r.cpu}: {r.variant} = {100 * frac:.1f}% of {ISA_INSN[r.isa].upper()} peak "
                f"(goal {100 * goal:.0f}%)"
            )
            out.append((text, frac >= goal))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cpus", nargs="*", default=list(CORES))
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--family", default="qs8-gemm", help="GEMM family to model")
    args = parser.parse_args(argv)
    tool = llvm_mca()
    if tool is None or shutil.which("aarch64-linux-gnu-gcc") is None:
        print("arm_mca: needs llvm-mca and aarch64-linux-gnu-gcc (scripts/apt-packages.txt)")
        return 2
    version = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout
    ver = re.search(r"LLVM version ([\d.]+)", version)
    depth = 8 if args.family == "qs8-gemm" else 16
    print(f"tool: {tool} (LLVM {ver.group(1) if ver else '?'}); loop = one {depth}-deep k step")
    rows = measure(args.cpus, tool, args.family)
    print(
        "| variant | core | MACs/iter | cycles/iter | MACs/cycle | peak (model) | % of peak "
        "| % of SDOT peak |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r.variant} | {r.cpu} | {r.macs} | {r.cycles:.2f} | {r.rate:.1f} | "
            f"{r.peak:.0f} ({ISA_INSN[r.isa].upper()}) | {100 * r.rate / r.peak:.0f}% | "
            f"{100 * r.rate / r.sdot_peak:.0f}% |"
        )
    ok = True
    for text, met in goals(rows) if args.family == "qs8-gemm" else qc4w_goals(rows):
        print(("MET     " if met else "MISSED  ") + text)
        ok &= met
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
