"""Accuracy bench: output SQNR vs float of pt2q's plain flow, pt2q ``quantize(..., "auto")`` and
torchao 0.18's plain flow (in a subprocess: torchao registers global Inductor passes), for
X86InductorQuantizer and XNNPACKQuantizer (per-channel), on the zoo of ``accuracy_models.py``;
then pass/fail against the accuracy issue's goals.

Every flow calibrates on the first 3 batches and is judged on the 4th (held out). MiniLM is
judged by the cosine of mean-pooled sentence embeddings (minimum over the held-out sentences),
ResNet-50 and MobileNetV2 by the SQNR of their pooled features (``JUDGED_OUTPUT``: the issue's
figures are those; the SQNR over all outputs, feature map included, is printed too), the rest by
the SQNR over all outputs; the judge is also the metric ``quantize`` keeps its methods by.

    .venv/bin/python bench/accuracy.py                          # everything (long: ~1 h here)
    .venv/bin/python bench/accuracy.py --models minilm,mobilenetv2 --flows plain,auto
    .venv/bin/python bench/accuracy.py --models mobilenetv2 --flows plain,auto,target

Flow ``target`` (an extra row, not the headline): ``quantize(..., "auto", target=goal)`` with the
issue's goal for that model and quantizer (``QUANTIZE_GOALS``): what mixed precision must leave
float to reach it, and the held-out score it then gives.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from accuracy_models import JUDGED_OUTPUT, MODELS, mean_pooled  # noqa: E402

QUANTIZERS = ("x86", "xnnpack")
FLOWS = ("plain", "auto", "target", "torchao")
# the accuracy issue's goals for quantize(..., "auto"); flow "target" passes each as quantize's
# target= (mixed_precision then leaves float the fewest ops that reach it on the fit batches)
QUANTIZE_GOALS: dict[tuple[str, str], float] = {
    ("minilm", "x86"): 0.998,
    ("minilm", "xnnpack"): 0.998,
    ("mobilenetv2", "x86"): 20.0,
    ("mobilenetv2", "xnnpack"): 20.0,
    ("resnet50", "x86"): 35.0,
    ("resnet50", "xnnpack"): 35.0,
    ("bert", "xnnpack"): 28.0,
    ("gpt2", "x86"): 40.0,
}


def _sqnr(ref: list[Any], out: list[Any]) -> float:
    from pt2q.algorithms.batches import output_sqnr

    return output_sqnr(ref, out)


def _cosine(ref: Any, out: Any, mask: torch.Tensor) -> float:
    a, b = mean_pooled(ref, mask), mean_pooled(out, mask)
    return float(torch.nn.functional.cosine_similarity(a, b).min())


def _judged_sqnr(name: str) -> Any:
    """The ``quantize`` metric: SQNR of the output ``name`` of every batch."""

    def metric(ref: list[Any], outs: list[Any], held: list[Any]) -> float:
        return _sqnr([r[name] for r in ref], [o[name] for o in outs])

    return metric


def _score(model_name: str, ref: Any, out: Any, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    score = {"sqnr": _sqnr([ref], [out])}
    if model_name in JUDGED_OUTPUT:
        score["sqnr_all"] = score["sqnr"]
        score["sqnr"] = _judged_sqnr(JUDGED_OUTPUT[model_name])([ref], [out], [batch])
    if model_name == "minilm":
        score["cosine"] = _cosine(ref, out, batch["attention_mask"])
    return score


def _pt2q_quantizer(name: str) -> Any:
    from pt2q.quantizers import (
        X86InductorQuantizer,
        XNNPACKQuantizer,
        get_default_x86_inductor_quantization_config,
        get_symmetric_quantization_config,
    )

    if name == "x86":
        return X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config())
    return XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))


def _torchao_quantizer(name: str) -> Any:
    if name == "x86":
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

        return x86.X86InductorQuantizer().set_global(
            x86.get_default_x86_inductor_quantization_config()
        )
    from torchao.testing.pt2e import _xnnpack_quantizer as xnn

    return xnn.XNNPACKQuantizer().set_global(
        xnn.get_symmetric_quantization_config(is_per_channel=True)
    )


def torchao_worker(model_name: str, quantizer: str) -> None:
    """In a fresh process: torchao's plain flow; prints one JSON line."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    model, batches = MODELS[model_name]()
    try:
        gm = torch.export.export(model, (), kwargs=batches[0]).module()
        prepared = prepare_pt2e(gm, _torchao_quantizer(quantizer))
        with torch.no_grad():
            for b in batches[:-1]:
                prepared(**b)
            converted = convert_pt2e(prepared)
            ref, out = model(**batches[-1]), converted(**batches[-1])
        print(json.dumps(_score(model_name, ref, out, batches[-1])))
    except Exception as e:  # torchao crashing is a result here, not a bench failure
        print(json.dumps({"error": f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"}))


def _torchao(model_name: str, quantizer: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--torchao-worker", model_name, quantizer]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return {"error": f"worker failed: {proc.stderr.strip().splitlines()[-1:]}"}
    return json.loads(lines[-1])


def _pt2q(
    model_name: str,
    quantizer: str,
    flows: list[str],
    adaround_s: float,
    sensitivity_s: float | None,
) -> dict[str, Any]:
    from pt2q.algorithms import quantize

    model, batches = MODELS[model_name]()
    gm = torch.export.export(model, (), kwargs=batches[0]).module()
    held = batches[-1]
    with torch.no_grad():
        ref = model(**held)
    result: dict[str, Any] = {}
    methods: Any = "auto" if "auto" in flows else ()
    metric = _judged_sqnr(JUDGED_OUTPUT[model_name]) if model_name in JUDGED_OUTPUT else None
    if model_name == "minilm":  # judge by what users of sentence embeddings see

        def metric(ref: list[Any], outs: list[Any], held: list[Any]) -> float:
            pairs = zip(ref, outs, held, strict=True)
            return min(_cosine(r, o, b["attention_mask"]) for r, o, b in pairs)

    def run(run_methods: Any, target: float | None) -> tuple[Any, Any, float, float]:
        start, cpu_start = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            converted, report = quantize(
                gm,
                _pt2q_quantizer(quantizer),
                batches,
                run_methods,
                held_out=1,
                adaround_seconds=adaround_s,
                sensitivity_seconds=sensitivity_s,
                metric=metric,
                target=target,
            )
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        return converted, report, seconds, cpu_seconds

    converted, report, seconds, cpu_seconds = run(methods, None)
    result["plain"] = {"sqnr": report.plain_sqnr_db}
    if model_name == "minilm":
        result["plain"] = {"cosine": report.plain_sqnr_db}  # the metric is the cosine here
    flows_run = [("auto", None)] if "auto" in flows else []
    goal = QUANTIZE_GOALS.get((model_name, quantizer))
    if "target" in flows and goal is not None:
        flows_run.append(("target", goal))
    for flow, target in flows_run:
        if flow == "target":
            converted, report, seconds, cpu_seconds = run("auto", target)
        with torch.no_grad():
            out = converted(**held)
        result[flow] = {
            **_score(model_name, ref, out, held),
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,  # all threads; wall > cpu / threads on a loaded machine
            "report": str(report),
        }
    return result


def _fmt(entry: dict[str, Any] | None, key: str = "sqnr") -> str:
    if entry is None:
        return "-"
    if "error" in entry:
        return "crash"
    value = entry.get(key)
    return "-" if value is None else (f"{value:.4f}" if key == "cosine" else f"{value:.1f}")


def _goals(results: dict[tuple[str, str], dict[str, Any]]) -> list[tuple[str, bool | None]]:
    """(goal, passed or None when not measured) per goal of the accuracy issue."""
    checks: list[tuple[str, bool | None]] = []

    def get(m: str, q: str, flow: str, key: str = "sqnr") -> float | None:
        entry = results.get((m, q), {}).get(flow)
        return None if entry is None or "error" in entry else entry.get(key)

    def check(goal: str, value: float | None, bound: float) -> None:
        checks.append(
            (
                f"{goal} (measured {value if value is None else round(value, 4)})",
                None if value is None else value >= bound,
            )
        )

    for q in QUANTIZERS:  # the MiniLM goals hold for both quantizers
        check(f"MiniLM {q} plain cosine >= 0.995", get("minilm", q, "plain", "cosine"), 0.995)
        check(f"MiniLM {q} quantize cosine >= 0.998", get("minilm", q, "auto", "cosine"), 0.998)
    for (m, q), _ in sorted(results.items()):
        if m == "minilm":
            continue
        ours, theirs = get(m, q, "plain"), get(m, q, "torchao")
        if ours is not None and theirs is not None:
            checks.append(
                (f"{m} {q} plain {ours:.1f} >= torchao {theirs:.1f} - 0.3 dB", ours >= theirs - 0.3)
            )
        auto = get(m, q, "auto")
        if ours is not None and auto is not None:
            checks.append((f"{m} {q} quantize {auto:.1f} >= plain {ours:.1f}", auto >= ours - 1e-9))
    for (m, q), goal in QUANTIZE_GOALS.items():
        if m != "minilm":
            check(f"{m} {q} quantize >= {goal:g} dB", get(m, q, "auto"), goal)
    for (m, q), goal in QUANTIZE_GOALS.items():  # the extra rows: what a target costs
        key = "cosine" if m == "minilm" else "sqnr"
        value = get(m, q, "target", key)
        if value is not None:
            check(f"(extra row) {m} {q} quantize(target={goal:g}) >= {goal:g}", value, goal)
    seconds = get("resnet50", "x86", "auto", "seconds")
    cpu = get("resnet50", "x86", "auto", "cpu_seconds")
    if seconds is not None and cpu is not None:
        checks.append(
            (
                f"resnet50 x86 quantize (batch 2, 4 calibration batches) {seconds:.0f} s < 60 s "
                f"({cpu:.0f} CPU s over all threads)",
                seconds < 60,
            )
        )
    return checks


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma list of {list(MODELS)}")
    ap.add_argument("--quantizers", default=",".join(QUANTIZERS))
    ap.add_argument(
        "--flows",
        default="plain,auto,torchao",
        help="plain, auto (quantize), target (quantize with the goal as target=), torchao",
    )
    ap.add_argument("--adaround-seconds", type=float, default=20.0)
    ap.add_argument("--sensitivity-seconds", type=float, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--torchao-worker", nargs=2, metavar=("MODEL", "QUANTIZER"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.torchao_worker:
        torchao_worker(*args.torchao_worker)
        return
    models, quantizers, flows = (s.split(",") for s in (args.models, args.quantizers, args.flows))
    unknown = sorted(set(models) - set(MODELS)) + sorted(set(quantizers) - set(QUANTIZERS))
    if unknown or set(flows) - set(FLOWS):
        ap.error(f"unknown names {unknown or sorted(set(flows) - set(FLOWS))}")
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for m in models:
        for q in quantizers:
            entry: dict[str, Any] = {}
            if {"plain", "auto", "target"} & set(flows):
                try:
                    entry.update(
                        _pt2q(m, q, flows, args.adaround_seconds, args.sensitivity_seconds)
                    )
                except Exception as e:  # shown as "crash" in the table, with the error below
                    entry["plain"] = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
                    print(f"    pt2q: {entry['plain']['error']}", flush=True)
            if "torchao" in flows:
                entry["torchao"] = _torchao(m, q)
            results[(m, q)] = entry
            key = "cosine" if m == "minilm" else "sqnr"
            print(
                f"{m:<12} {q:<8} plain {_fmt(entry.get('plain'), key):>7}  quantize "
                f"{_fmt(entry.get('auto'), key):>7}  target {_fmt(entry.get('target'), key):>7}  "
                f"torchao {_fmt(entry.get('torchao'), key):>7}",
                flush=True,
            )
            for flow in ("auto", "target"):
                if flow not in entry or "report" not in entry[flow]:
                    continue
                every = entry[flow].get("sqnr_all")
                every_note = "" if every is None else f"; all outputs {every:.1f} dB"
                print(
                    f"    {flow}: {entry[flow]['seconds']:.0f} s, "
                    f"{entry[flow]['cpu_seconds']:.0f} CPU s{every_note}"
                )
                print("    " + entry[flow]["report"].replace("\n", "\n    "), flush=True)
            if "error" in entry.get("torchao", {}):
                print(f"    torchao: {entry['torchao']['error']}", flush=True)
    print(
        "\n| model | quantizer | pt2q plain | pt2q quantize(auto) | quantize(auto, target=goal) "
        "| torchao plain |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for (m, q), entry in results.items():
        key = "cosine" if m == "minilm" else "sqnr"
        cells = [_fmt(entry.get(f), key) for f in ("plain", "auto", "target", "torchao")]
        print(f"| {m} | {q} | " + " | ".join(cells) + " |")
    print("\nGoals:")
    for goal, ok in _goals(results):
        print(f"  {'PASS' if ok else ('FAIL' if ok is not None else 'n/a ')}  {goal}")


if __name__ == "__main__":
    main()
