"""``python -m pt2q.lowering.arm.check``: the kernels on the aarch64 ISA and on this host.

Cross-compiles the kernel test driver (``aarch64-linux-gnu-gcc -static``) and runs it under
``qemu-aarch64`` for three CPU models, then runs the SIMDe host build:

* ``cortex-a53``  armv8-a, no dotprod: scalar + ``neon`` variants (mlal GEMM)
* ``neoverse-n1`` armv8.2 with dotprod: + ``dot``
* ``max``         everything qemu implements: + ``i8mm``

Each run checks every variant against the scalar reference on random sweeps and every variant
(scalar included) against golden vectors written here from the Python reference
(``reference.py``: numpy and ``quantized_decomposed``). Exit status 0 when all runs pass,
1 on any mismatch, 2 when a tool is missing.
"""

from __future__ import annotations

import argparse
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pt2q.lowering.arm import reference as ref
from pt2q.lowering.arm.build import AARCH64_CC, build_driver, cache_dir
from pt2q.tolerances import KERNEL_VS_FLOAT_REFERENCE_STEPS

__all__ = ["QEMU", "QEMU_CPUS", "RunResult", "write_golden", "run_driver", "main"]

QEMU = "qemu-aarch64"
# CPU model -> the strongest kernel ISA it must report (the driver prints "cpu isa: ...").
QEMU_CPUS: dict[str, str] = {"cortex-a53": "neon", "neoverse-n1": "dot", "max": "i8mm"}

Record = tuple[str, list[int], list[float], list[np.ndarray]]


@dataclass(frozen=True)
class RunResult:
    """One driver run: where, which ISA level it detected, check counts, exit code, output."""

    where: str
    isa: str
    checks: int
    mismatches: int
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.mismatches == 0 and self.checks > 0


def _clamps(rng: np.random.Generator, zp: int) -> Iterator[tuple[int, int]]:
    yield -128, 127  # no activation
    yield zp, 127  # fused ReLU
    yield int(rng.integers(-128, 0)), int(rng.integers(1, 128))  # narrow window


def _geometry_ints(batch: int, in_h: int, in_w: int, c: int, geo: ref.PoolGeometry, pad: int):
    out_h, out_w = geo.out_hw(in_h, in_w)
    geometry = [*geo.kernel, *geo.stride, *geo.padding, *geo.dilation]
    return [batch, in_h, in_w, c, *geometry, out_h, out_w, pad]


def golden_records(seed: int = 0) -> list[Record]:
    """Deterministic golden cases: (family, ints, floats, arrays + [expected]) as in
    ``kernels/test/driver_golden.h``. Each expected output is also checked here to be within
    ``KERNEL_VS_FLOAT_REFERENCE_STEPS`` of the float64 reference."""
    rng = np.random.default_rng(seed)

    def s8(*shape: int) -> np.ndarray:
        return np.asarray(rng.integers(-128, 128, size=shape, dtype=np.int8))

    records: list[Record] = []
    for m, n, k in [(1, 1, 1), (4, 8, 8), (5, 9, 17), (13, 24, 64), (3, 70, 144)]:
        zp = int(rng.integers(-128, 128))
        for qmin, qmax in _clamps(rng, zp):
            a, w = s8(m, k), rng.integers(-127, 128, size=(n, k), dtype=np.int8)
            bias = rng.integers(-20000, 20000, size=n).astype(np.int32)
            scale = (rng.uniform(0.1, 4.0, size=n) / (64 * k + 1)).astype(np.float32)
            want = ref.gemm(a, w, bias, scale, zp, qmin, qmax)
            exact = ref.gemm_float(a, w, bias, scale, zp, qmin, qmax)
            assert np.abs(want.astype(int) - exact).max() <= KERNEL_VS_FLOAT_REFERENCE_STEPS
            records.append(("qs8-gemm", [m, n, k, zp, qmin, qmax], [], [a, w, bias, scale, want]))
    for c, geo, pool in [
        (8, ref.PoolGeometry((3, 3), (1, 1), (1, 1)), ref.PoolGeometry((2, 2), (2, 2), (0, 0))),
        (13, ref.PoolGeometry((3, 3), (2, 2), (1, 1)), ref.PoolGeometry((3, 3), (2, 2), (1, 1))),
        (
            24,
            ref.PoolGeometry((5, 5), (1, 1), (4, 4), (2, 2)),
            ref.PoolGeometry((3, 3), (1, 1), (1, 1)),
        ),
    ]:
        x = s8(2, 9, 8, c)
        in_zp, zp = (int(v) for v in rng.integers(-128, 128, size=2))
        taps = geo.kernel[0] * geo.kernel[1]
        for qmin, qmax in _clamps(rng, zp):
            w = rng.integers(-127, 128, size=(taps, c), dtype=np.int8)
            bias = rng.integers(-5000, 5000, size=c).astype(np.int32)
            scale = rng.uniform(1e-4, 4.0 / (taps * 128), size=c).astype(np.float32)
            want = ref.dwconv(x, w, bias, scale, geo, in_zp, zp, qmin, qmax)
            ints = _geometry_ints(2, 9, 8, c, geo, in_zp) + [zp, qmin, qmax]
            records.append(("qs8-dwconv", ints, [], [x, w, bias, scale, want]))
            want = ref.maxpool(x, pool, qmin, qmax)
            ints = _geometry_ints(2, 9, 8, c, pool, -128) + [in_zp, zp, qmin, qmax]
            records.append(("s8-maxpool", ints, [0.0], [x, want]))
            pool_taps = pool.kernel[0] * pool.kernel[1]
            scale1 = float(np.float32(rng.uniform(0.2, 2.0) / pool_taps))
            want = ref.avgpool(x, pool, in_zp, scale1, zp, qmin, qmax)
            ints = _geometry_ints(2, 9, 8, c, pool, in_zp) + [in_zp, zp, qmin, qmax]
            records.append(("qs8-avgpool", ints, [scale1], [x, want]))
    for n in (1, 16, 17, 1000):
        a, b = s8(n), s8(n)
        a_zp, b_zp, zp = (int(v) for v in rng.integers(-128, 128, size=3))
        m1, m2 = (float(np.float32(v)) for v in rng.uniform(0.05, 2.0, size=2))
        m3 = float(np.float32(rng.uniform(1e-4, 0.02)))
        for qmin, qmax in _clamps(rng, zp):
            want = ref.vadd(a, b, a_zp, b_zp, m1, m2, zp, qmin, qmax)
            records.append(("qs8-vadd", [n, a_zp, b_zp, zp, qmin, qmax], [m1, m2], [a, b, want]))
            want = ref.vmul(a, b, a_zp, b_zp, m3, zp, qmin, qmax)
            records.append(("qs8-vmul", [n, a_zp, b_zp, zp, qmin, qmax], [m3], [a, b, want]))
            q_scale = float(rng.uniform(0.01, 0.5))
            # half of the inputs sit exactly on .5 steps: round-half-even must agree with torch
            halves = (rng.integers(-300, 300, size=n) + 0.5) * np.float32(q_scale)
            xf = np.where(np.arange(n) % 2 == 0, halves, rng.normal(0, 30, size=n))
            xf = xf.astype(np.float32)
            want = ref.quantize(xf, q_scale, zp, qmin, qmax)
            inv = float(np.float32(1.0 / q_scale))
            records.append(("f32-qs8-vcvt", [n, zp, qmin, qmax], [inv], [xf, want]))
            records.append(
                (
                    "qs8-vcvt",
                    [n, a_zp, zp, qmin, qmax],
                    [m1],
                    [a, ref.requantize(a, a_zp, m1, zp, qmin, qmax)],
                )
            )
        want = ref.dequantize(a, m1, a_zp)
        records.append(("qs8-f32-vcvt", [n, a_zp], [m1], [a, want]))
    return records


def write_golden(path: Path, seed: int = 0) -> Path:
    """Write ``golden_records(seed)`` in the driver's PT2QGOLD format; returns ``path``."""
    with open(path, "wb") as f:
        f.write(b"PT2QGOLD")
        for name, ints, floats, arrays in golden_records(seed):
            f.write(struct.pack("<I", len(name)) + name.encode())
            f.write(struct.pack(f"<I{len(ints)}i", len(ints), *ints))
            f.write(struct.pack(f"<I{len(floats)}f", len(floats), *floats))
            f.write(struct.pack("<I", len(arrays)))
            for arr in arrays:
                data = np.ascontiguousarray(arr).tobytes()
                f.write(struct.pack("<I", len(data)) + data)
    return path


def run_driver(driver: Path, golden: Path, qemu_cpu: str | None, env: dict | None = None):
    """Run the driver natively (``qemu_cpu=None``) or under ``qemu-aarch64 -cpu qemu_cpu``."""
    cmd = [str(driver), str(golden)]
    if qemu_cpu is not None:
        cmd = [QEMU, "-cpu", qemu_cpu, *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    out = proc.stdout + proc.stderr
    isa = re.search(r"cpu isa: (\w+)", out)
    checks = re.search(r"checks: (\d+), mismatches: (\d+)", out)
    return RunResult(
        where=f"qemu-aarch64 -cpu {qemu_cpu}" if qemu_cpu else "host (SIMDe)",
        isa=isa.group(1) if isa else "?",
        checks=int(checks.group(1)) if checks else 0,
        mismatches=int(checks.group(2)) if checks else -1,
        returncode=proc.returncode,
        output=out,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pt2q.lowering.arm.check", description=__doc__)
    parser.add_argument("--cpus", nargs="*", default=list(QEMU_CPUS), help="qemu CPU models")
    parser.add_argument("--no-host", action="store_true", help="skip the SIMDe host run")
    args = parser.parse_args(argv)
    missing = [t for t in (AARCH64_CC, QEMU) if shutil.which(t) is None]
    if missing and args.cpus:
        print(f"check: missing {', '.join(missing)} (scripts/setup.sh installs them)")
        return 2
    golden = write_golden(cache_dir() / "golden.bin")
    results: list[RunResult] = []
    if args.cpus:
        driver = build_driver("aarch64")
        for cpu in args.cpus:
            result = run_driver(driver, golden, cpu)
            expected = QEMU_CPUS.get(cpu)
            if expected is not None and result.isa != expected:
                result = RunResult(
                    result.where,
                    result.isa,
                    result.checks,
                    result.mismatches,
                    1,
                    result.output + f"\nexpected isa {expected}\n",
                )
            results.append(result)
    if not args.no_host:
        results.append(run_driver(build_driver("host"), golden, None))
    for r in results:
        status = "PASS" if r.ok else "FAIL"
        print(f"{status}  {r.where:28s} isa={r.isa:6s} checks={r.checks} mismatches={r.mismatches}")
        if not r.ok:
            print(r.output)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
