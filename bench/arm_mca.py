"""llvm-mca throughput of each qs8 GEMM variant's inner loop (no ARM hardware needed).

Compiles ``kernels/qs8-gemm/4x8-neon-*.c`` with ``aarch64-linux-gnu-gcc -O2 -S`` (each with its
ISA's ``-march``), cuts out the innermost loop (the block holding the MAC instructions, up to
its backward branch), runs ``llvm-mca -mcpu=<core>`` on it, and prints MACs per cycle against
the core's int8 peak (2 ASIMD pipes x 16 MACs per SDOT = 32 MACs/cycle on Neoverse-N1 and
Cortex-A76; SMMLA does 32 MACs per instruction, so its peak is 64 where the core has i8mm).
These are static estimates of a steady-state loop, not measurements.

    python bench/arm_mca.py [--cpus neoverse-n1 cortex-a76 neoverse-n2]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pt2q.lowering.arm.kernels import ISA_MARCH, KERNEL_DIR, variants

MAC_PER_INSN = {"smlal": 4, "smlal2": 4, "sdot": 16, "smmla": 32}
SDOT_PEAK = 32  # MACs/cycle: 2 ASIMD pipes x one 16-MAC SDOT each


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


def mca(asm_loop: list[str], cpu: str, tool: str) -> float:
    """llvm-mca cycles per loop iteration (steady state over 500 iterations)."""
    with tempfile.NamedTemporaryFile("w", suffix=".s", delete=False) as f:
        f.write("\n".join(asm_loop) + "\n")
    cmd = [
        tool,
        "-mtriple=aarch64",
        f"-mcpu={cpu}",
        "-mattr=+dotprod,+i8mm",
        "-iterations=500",
        f.name,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"Total Cycles:\s+(\d+)", out).group(1))
    return total / 500


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cpus", nargs="*", default=["neoverse-n1", "cortex-a76", "neoverse-n2"])
    args = parser.parse_args(argv)
    tool = llvm_mca()
    if tool is None or shutil.which("aarch64-linux-gnu-gcc") is None:
        print("arm_mca: needs llvm-mca and aarch64-linux-gnu-gcc (scripts/apt-packages.txt)")
        return 2
    print(f"tool: {tool}; loop = one 8-deep k step of a 4x8 tile (256 MACs)")
    print("| variant | core | cycles/iter | MACs/cycle | % of SDOT peak (32) |")
    print("| ------- | ---- | ----------- | ---------- | ------------------- |")
    for k in variants("qs8-gemm"):
        if k.isa == "scalar":
            continue
        with tempfile.TemporaryDirectory() as tmp:
            s = Path(tmp) / "k.s"
            subprocess.run(
                [
                    "aarch64-linux-gnu-gcc",
                    "-O2",
                    "-S",
                    "-ffp-contract=off",
                    f"-march={ISA_MARCH[k.isa]}",
                    f"-I{KERNEL_DIR / 'common'}",
                    "-o",
                    str(s),
                    str(KERNEL_DIR / k.source),
                ],
                check=True,
            )
            loop = inner_loop(s.read_text())
        macs = sum(MAC_PER_INSN.get(ln.split()[0], 0) for ln in loop)
        for cpu in args.cpus:
            try:
                cycles = mca(loop, cpu, tool)
            except subprocess.CalledProcessError as e:
                print(f"| {k.variant} | {cpu} | llvm-mca failed: {e.stderr.strip()[:60]} | | |")
                continue
            rate = macs / cycles
            print(
                f"| {k.variant} | {cpu} | {cycles:.2f} | {rate:.1f} | {100 * rate / SDOT_PEAK:.0f}% |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
