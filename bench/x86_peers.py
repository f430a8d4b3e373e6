"""Peers of ``bench/x86.py``, each run in its own process (torchao registers global Inductor
passes on import; a package is loaded where pt2q was never imported).

    python bench/x86_peers.py torchao MODEL REDUCE_RANGE WARMUP CLOCK THREADS  (serves calls)
    python bench/x86_peers.py pt2q MODEL REDUCE_RANGE WARMUP CLOCK THREADS     (serves calls)
    python bench/x86_peers.py executorch MODEL 0 WARMUP CLOCK THREADS          (serves; if installed)
    python bench/x86_peers.py package PATH INPUTS.pt                      (never imports pt2q)

Each prints one JSON line (prefixed ``PEER ``): times in ms, ``first_s`` = lowering (or load)
+ first call, s. The torchao, pt2q and ExecuTorch peers then serve the bench: for each ``time`` line on
stdin one call, answered ``PEER {"ms": ...}`` (CLOCK ``wall`` or ``cpu``, as in
``bench/x86.py``), so their calls interleave with each other and the bench's own (the machine's
load falls on all alike; pt2q / torchao and pt2q / ExecuTorch are ratios of neighbouring calls).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

TAG = "PEER "  # protocol lines on stdout; anything else a library prints there is ignored
# --clock of bench/x86.py: wall time, or the CPU time of the calling thread (1 thread only).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}


def _say(result: dict[str, Any]) -> None:
    print(TAG + json.dumps(result), flush=True)


def serve(fn: Callable[[], Any], clock: Callable[[], float]) -> None:
    """One timed call of ``fn`` per ``time`` line on stdin, answered with its ms on ``clock``."""
    for line in sys.stdin:
        if line.strip() != "time":
            break
        with torch.no_grad():
            t0 = clock()
            fn()
            _say({"ms": (clock() - t0) * 1e3})


def torchao(name: str, reduce_range: bool, warmup: int) -> tuple[dict[str, Any], Callable[[], Any]]:
    """torchao 0.18: its lowering + first call, then its best steady state (convert +
    torch.compile with freezing, its documented recipe), warmed up, to serve."""
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.lowering import lower_pt2e_quantized_to_x86
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from x86_models import accuracy_batches, build, concat_sqnr_db

    model, inputs = build(name)
    quantizer = xiq.X86InductorQuantizer().set_global(
        xiq.get_default_x86_inductor_quantization_config(reduce_range=reduce_range)
    )
    prepared = prepare_pt2e(torch.export.export(model, inputs).module(), quantizer)
    with torch.no_grad():
        prepared(*inputs)
    converted = convert_pt2e(prepared)
    result: dict[str, Any] = {}
    t0 = time.perf_counter()
    try:
        with torch.no_grad():
            lowered = lower_pt2e_quantized_to_x86(converted, inputs)
            lowered(*inputs)
        result["first_s"] = time.perf_counter() - t0
    except Exception as e:  # noqa: BLE001 - a peer's failure is a result
        result["lower_error"] = f"{type(e).__name__}: {e}"[:160]
    else:
        try:  # bench/x86.py's accuracy figure, on the same inputs
            with torch.no_grad():
                batches = accuracy_batches(inputs)
                f = [model(*b) for b in batches]
                result["sqnr_ref"] = concat_sqnr_db([converted(*b) for b in batches], f)
                result["sqnr_low"] = concat_sqnr_db([lowered(*b) for b in batches], f)
        except Exception as e:  # noqa: BLE001 - a peer's failure is a result
            result["accuracy_error"] = f"{type(e).__name__}: {e}"[:160]
    compiled = torch.compile(converted)
    with torch.no_grad(), torch._inductor.config.patch(freezing=True):
        compiled(*inputs)  # compiles with freezing; later calls run that code (no recompile)

    def run() -> Any:
        return compiled(*inputs)

    with torch.no_grad():
        for _ in range(warmup):
            run()
    return result, run


def pt2q(name: str, reduce_range: bool, warmup: int) -> tuple[dict[str, Any], Callable[[], Any]]:
    """pt2q's lowered module, set up like the torchao peer (quantize, convert, lower, warm up),
    to serve: the two int8 programs are timed from processes of the same history (a process
    that also ran the fp32 model allocates and caches differently: up to 5% on the MLP)."""
    from common import keep_torchao_out

    keep_torchao_out()
    from x86_models import build

    from pt2q.lowering.x86 import lower_pt2e_quantized_to_x86
    from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
    from pt2q.quantizers.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    model, inputs = build(name)
    quantizer = X86InductorQuantizer().set_global(
        get_default_x86_inductor_quantization_config(reduce_range=reduce_range)
    )
    prepared = prepare_pt2e(torch.export.export(model, inputs).module(), quantizer)
    with torch.no_grad():
        prepared(*inputs)
    converted = convert_pt2e(prepared)
    t0 = time.perf_counter()
    lowered = lower_pt2e_quantized_to_x86(converted, inputs)
    with torch.no_grad():
        lowered(*inputs)
    result = {"first_s": time.perf_counter() - t0}

    def run() -> Any:
        return lowered(*inputs)

    with torch.no_grad():
        for _ in range(warmup):
            run()
    return result, run


def executorch(
    name: str, reduce_range: bool, warmup: int
) -> tuple[dict[str, Any], Callable[[], Any]]:
    """ExecuTorch's XNNPACK runtime on the same model quantized by pt2q's XNNPACKQuantizer
    (per-channel; ``reduce_range`` does not apply), lowered, loaded, warmed up, to serve."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime
    from x86_models import build

    from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
    from pt2q.quantizers.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    model, inputs = build(name)
    q = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(model, inputs).module(), q)
    with torch.no_grad():
        prepared(*inputs)
    ep = torch.export.export(convert_pt2e(prepared), inputs)
    t0 = time.perf_counter()
    program = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch()
    method = Runtime.get().load_program(program.buffer).load_method("forward")
    method.execute(list(inputs))
    result = {"first_s": time.perf_counter() - t0}

    def run() -> Any:
        # the loaded method reads the serialized buffer in place: keep the program alive
        return method.execute(list(inputs)) if program is not None else None

    for _ in range(warmup):
        run()
    return result, run


def package(path: str, inputs_path: str) -> dict[str, Any]:
    """Load an AOTInductor package and run it once, timed from a process without pt2q. The
    total is what ``aoti_load_package`` + the first call cost; its parts are timed by doing
    first, apart, the two things that call does before reading the package: importing
    ``torch._inductor`` and torch's CPU ISA probe (cached in the process after)."""
    t0 = time.perf_counter()
    import torch._inductor.cpu_vec_isa as vec_isa

    t1 = time.perf_counter()
    vec_isa.pick_vec_isa()
    t2 = time.perf_counter()
    runner = torch._inductor.aoti_load_package(path)
    t3 = time.perf_counter()
    inputs = torch.load(inputs_path)
    out = runner(*inputs)
    t4 = time.perf_counter()
    torch.save(out, inputs_path + ".out")
    assert "pt2q" not in sys.modules
    parts = {"import": t1 - t0, "isa_probe": t2 - t1, "load": t3 - t2, "first_call": t4 - t3}
    return {"first_s": t4 - t0, "parts_s": parts}


def main() -> None:
    kind, *rest = sys.argv[1:]
    if kind == "package":
        _say(package(rest[0], rest[1]))
        return
    torch.set_num_threads(int(rest[-1]))
    setup = {"torchao": torchao, "pt2q": pt2q, "executorch": executorch}[kind]
    result, run = setup(rest[0], rest[1] == "1", int(rest[2]))
    _say(result)
    serve(run, CLOCKS[rest[3]])


if __name__ == "__main__":
    main()
