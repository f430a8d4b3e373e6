"""Peers of ``bench/x86.py``, each run in its own process (torchao registers global Inductor
passes on import; a package is loaded where pt2q was never imported).

    python bench/x86_peers.py torchao MODEL REDUCE_RANGE ITERS WARMUP THREADS
    python bench/x86_peers.py executorch MODEL ITERS WARMUP THREADS      (if installed)
    python bench/x86_peers.py package PATH INPUTS.pt                      (never imports pt2q)

Each prints one JSON line: times in ms, ``first_s`` = lowering (or load) + first call, s.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch


def _median_ms(fn: Callable[[], Any], warmup: int, iters: int) -> float:
    with torch.no_grad():
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def torchao(name: str, reduce_range: bool, iters: int, warmup: int) -> dict[str, Any]:
    """torchao 0.18: its lowering + first call, then its best steady state (convert +
    torch.compile with freezing, its documented recipe)."""
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
        compiled(*inputs)

    def run() -> Any:
        with torch._inductor.config.patch(freezing=True):
            return compiled(*inputs)

    result["int8_ms"] = _median_ms(run, warmup, iters)
    return result


def executorch(name: str, iters: int, warmup: int) -> dict[str, Any]:
    """ExecuTorch's XNNPACK runtime on the same model quantized by pt2q's XNNPACKQuantizer."""
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
    first_s = time.perf_counter() - t0
    return {
        "int8_ms": _median_ms(lambda: method.execute(list(inputs)), warmup, iters),
        "first_s": first_s,
    }


def package(path: str, inputs_path: str) -> dict[str, Any]:
    """Load an AOTInductor package and run it once, timed from a process without pt2q."""
    t0 = time.perf_counter()
    runner = torch._inductor.aoti_load_package(path)
    inputs = torch.load(inputs_path)
    out = runner(*inputs)
    first_s = time.perf_counter() - t0
    torch.save(out, inputs_path + ".out")
    assert "pt2q" not in sys.modules
    return {"first_s": first_s}


def main() -> None:
    kind, *rest = sys.argv[1:]
    if kind == "package":
        result = package(rest[0], rest[1])
    else:
        torch.set_num_threads(int(rest[-1]))
        if kind == "torchao":
            result = torchao(rest[0], rest[1] == "1", int(rest[2]), int(rest[3]))
        else:
            result = executorch(rest[0], int(rest[1]), int(rest[2]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
