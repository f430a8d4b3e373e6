"""Cost on big graphs: a Llama-style decoder (transformers ``LlamaConfig``, hidden 1024, random
weights, no download) at several depths; export / prepare / calibrate(2 batches) / convert
seconds and the peak RSS each pipeline adds, then the goals with pass/fail:

* linear cost: 32-layer / 16-layer time ratio <= 2.2 for prepare and for convert;
* memory: peak RSS growth during prepare + calibrate + convert (over the RSS with the exported
  float model loaded) <= 1.5x the float parameter bytes (weights shared, int8 written once);
* pt2q prepare + convert of the deepest model <= half of torchao 0.18's, same machine and run.

Times are CPU seconds of the measuring process (``time.process_time``, one intra-op thread by
default): on a shared machine wall time mostly measures the other processes (it is printed too).

    .venv/bin/python bench/scale.py [--layers 8 16 32] [--no-torchao] [--threads 2]

Each measurement runs in its own child process (clean peak RSS; torchao never shares a process
with pt2q). Peak RSS is the kernel's high-water mark (``VmHWM``), reset after export
(``/proc/self/clear_refs``). The ratio goals use the two deepest models given; develop with
``--layers 2 4`` (the 32-layer model is ~1.7 GB of float weights, more for torchao's copy).
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

HIDDEN = 1024
SEQ = 32
VOCAB = 1000
STAGES = ("export", "prepare", "calibrate", "convert")


def decoder(layers: int) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    """Llama-style decoder (no LM head): ``layers`` blocks of attention + SwiGLU MLP."""
    from transformers import LlamaConfig, LlamaModel

    config = LlamaConfig(
        hidden_size=HIDDEN,
        intermediate_size=2816,
        num_attention_heads=16,
        num_key_value_heads=16,
        num_hidden_layers=layers,
        vocab_size=VOCAB,
        max_position_embeddings=2 * SEQ,
        use_cache=False,
    )
    torch.manual_seed(0)
    return LlamaModel(config).eval(), (torch.randint(0, VOCAB, (1, SEQ)),)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS


def _api(flow: str) -> tuple[Any, Any, Any]:
    if flow == "pt2q":
        from pt2q import convert_pt2e, prepare_pt2e
        from pt2q.quantizers import (
            X86InductorQuantizer,
            get_default_x86_inductor_quantization_config,
        )
    else:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
            X86InductorQuantizer,
            get_default_x86_inductor_quantization_config,
        )
    quantizer = X86InductorQuantizer()
    quantizer.set_global(get_default_x86_inductor_quantization_config())
    return prepare_pt2e, convert_pt2e, quantizer


def _export(model: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> Any:
    return torch.export.export(model, args).module()


class _Clock:
    """CPU seconds of this process (the goals: on a shared machine wall time mostly measures the
    other processes) and wall seconds, per stage."""

    def __init__(self, result: dict[str, float]) -> None:
        self.result = result

    def run(self, stage: str, fn: Any) -> Any:
        cpu, wall = time.process_time(), time.perf_counter()
        value = fn()
        self.result[stage] = time.process_time() - cpu
        self.result[f"{stage}_wall"] = time.perf_counter() - wall
        return value


def measure(flow: str, layers: int) -> dict[str, float]:
    """One pipeline in this process: CPU (and wall) seconds per stage, parameter bytes, peak
    RSS growth."""
    prepare_pt2e, convert_pt2e, quantizer = _api(flow)
    model, args = decoder(layers)
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    result: dict[str, float] = {"layers": layers, "param_bytes": param_bytes}
    clock = _Clock(result)
    gm = clock.run("export", functools.partial(_export, model, args))
    del model  # the exported module holds the weights
    gc.collect()
    base_kb = _status_kb("VmRSS")
    _reset_peak_rss()
    prepared = clock.run("prepare", lambda: prepare_pt2e(gm, quantizer))

    def calibrate() -> None:
        with torch.no_grad():
            for _ in range(2):
                prepared(*args)

    clock.run("calibrate", calibrate)
    clock.run("convert", lambda: convert_pt2e(prepared))
    result["rss_growth_bytes"] = (_status_kb("VmHWM") - base_kb) * 1024.0
    result["nodes"] = len(prepared.graph.nodes)
    return result


def _child(flow: str, layers: int, threads: int) -> dict[str, float] | str:
    cmd = [sys.executable, __file__, "--child", flow, str(layers), "--threads", str(threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)  # type: ignore[no-any-return]
    return f"FAILED (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(runs: dict[tuple[str, int], dict[str, float] | str], layers: list[int]) -> int:
    """Print the table and the goals; returns the number of failed goals."""
    print(f"\n{'flow':8s} {'layers':>6s} {'nodes':>6s} " + " ".join(f"{s:>17s}" for s in STAGES)
          + f" {'params MB':>9s} {'RSS+ MB':>8s} {'RSS+/params':>11s}")  # fmt: skip
    for (flow, n), r in runs.items():
        if isinstance(r, str):
            print(f"{flow:8s} {n:6d} {r}")
            continue
        cells = " ".join(f"{r[s]:8.3f} ({r[s + '_wall']:6.2f})" for s in STAGES)
        growth = r["rss_growth_bytes"] / r["param_bytes"]
        print(
            f"{flow:8s} {n:6d} {int(r['nodes']):6d} {cells} {r['param_bytes'] / 2**20:9.0f} "
            f"{r['rss_growth_bytes'] / 2**20:8.0f} {growth:11.2f}"
        )
    failed = 0
    print("\ngoals:")
    if len(layers) >= 2:
        small, big = layers[-2], layers[-1]
        a, b = runs.get(("pt2q", small)), runs.get(("pt2q", big))
        if isinstance(a, dict) and isinstance(b, dict):
            for stage in ("prepare", "convert"):
                ratio = b[stage] / a[stage]
                limit = 2.2 * (big / small) / 2  # 2.2 for a doubling
                ok = ratio <= limit
                failed += not ok
                print(f"  {stage} {big}/{small} layers: {ratio:.2f}x (goal <= {limit:.2f}x) "
                      f"{_verdict(ok)}")  # fmt: skip
    for (flow, n), r in runs.items():
        if flow == "pt2q" and isinstance(r, dict):
            growth = r["rss_growth_bytes"] / r["param_bytes"]
            ok = growth <= 1.5
            failed += not ok
            print(f"  peak RSS growth {n} layers: {growth:.2f}x float params (goal <= 1.5x) "
                  f"{_verdict(ok)}")  # fmt: skip
    ours, theirs = runs.get(("pt2q", layers[-1])), runs.get(("torchao", layers[-1]))
    if isinstance(ours, dict) and isinstance(theirs, dict):
        ratio = (ours["prepare"] + ours["convert"]) / (theirs["prepare"] + theirs["convert"])
        ok = ratio <= 0.5
        failed += not ok
        print(f"  prepare+convert {layers[-1]} layers pt2q/torchao: {ratio:.2f}x (goal <= 0.5x) "
              f"{_verdict(ok)}")  # fmt: skip
    elif theirs is not None:
        print(f"  torchao: {theirs}")
    return failed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, nargs="+", default=[8, 16, 32])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-torchao", action="store_true", help="skip the torchao comparison")
    ap.add_argument("--child", nargs=2, metavar=("FLOW", "LAYERS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]))))
        return
    layers = sorted(args.layers)
    print(
        f"Llama-style decoder, hidden {HIDDEN}, seq {SEQ}, threads {args.threads}; "
        "CPU seconds per stage (wall seconds in parentheses)"
    )
    runs: dict[tuple[str, int], dict[str, float] | str] = {}
    for n in layers:
        runs[("pt2q", n)] = _child("pt2q", n, args.threads)
    if not args.no_torchao:
        runs[("torchao", layers[-1])] = _child("torchao", layers[-1], args.threads)
    sys.exit(1 if report(runs, layers) else 0)


if __name__ == "__main__":
    main()
