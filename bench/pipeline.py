"""Pipeline cost: export / prepare / calibrate / convert wall times, pt2q next to torchao 0.18
(when installed: `pip install -e ".[bench]"`), on a ResNet-style CNN and a BERT-style encoder
built from transformers configs (random weights, no download); then HistogramObserver vs
MinMaxObserver calibration cost.

    .venv/bin/python bench/pipeline.py [--repeats 3] [--threads 2]

Each figure is the median over repeats of one full pipeline run; ratios are pt2q / torchao
(lower is better; the goal is <= 0.5) and Histogram / MinMax (goal <= 1.2).
"""

from __future__ import annotations

import statistics
import time
import traceback
from typing import Any

import torch
from common import available_flows, median_times, parse_bench_args
from qat import qat_report

STAGES = ("export", "prepare", "calibrate", "convert")


def resnet_style() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    from transformers import ResNetConfig, ResNetModel

    return ResNetModel(ResNetConfig()).eval(), (torch.randn(2, 3, 224, 224),)  # ResNet-50


def bert_style() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    from transformers import BertConfig, BertModel

    return BertModel(BertConfig()).eval(), (torch.randint(0, 1000, (1, 128)),)  # BERT-base


def run_pipeline(
    flow: str, model: torch.nn.Module, args: tuple[torch.Tensor, ...]
) -> dict[str, float]:
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
    times: dict[str, float] = {}
    t = time.perf_counter()
    gm = torch.export.export(model, args).module()
    times["export"] = time.perf_counter() - t
    quantizer = X86InductorQuantizer()
    quantizer.set_global(get_default_x86_inductor_quantization_config())
    t = time.perf_counter()
    prepared = prepare_pt2e(gm, quantizer)
    times["prepare"] = time.perf_counter() - t
    t = time.perf_counter()
    with torch.no_grad():
        for _ in range(4):
            prepared(*args)
    times["calibrate"] = time.perf_counter() - t
    t = time.perf_counter()
    convert_pt2e(prepared)
    times["convert"] = time.perf_counter() - t
    return times


def observer_cost(repeats: int) -> tuple[float, float]:
    from pt2q.observer import HistogramObserver, MinMaxObserver

    data = [torch.randn(1_000_000) * (1 + i % 3) for i in range(8)]

    def run(cls: Any) -> float:
        best = []
        for _ in range(repeats):
            obs = cls()
            t = time.perf_counter()
            for x in data:
                obs(x)
            obs.calculate_qparams()
            best.append(time.perf_counter() - t)
        return statistics.median(best)

    return run(HistogramObserver), run(MinMaxObserver)


def main() -> None:
    a = parse_bench_args()
    torch.manual_seed(0)
    flows = available_flows()
    for name, build in (("resnet-style", resnet_style), ("bert-style", bert_style)):
        model, args = build()
        results: dict[str, dict[str, float] | str] = {}
        for flow in flows:
            try:
                results[flow] = median_times(
                    lambda f=flow, m=model, x=args: run_pipeline(f, m, x), a.repeats
                )
            except Exception as e:  # torchao crashes on some models; report, do not stop
                results[flow] = f"FAILED: {type(e).__name__}: {str(e).splitlines()[0][:80]}"
                traceback.print_exc(limit=0)
        print(f"\n== {name}")
        for flow, r in results.items():
            if isinstance(r, str):
                print(f"  {flow:8s} {r}")
            else:
                cells = "  ".join(f"{s}={r[s]:.3f}" for s in STAGES)
                print(f"  {flow:8s} {cells}  total={sum(r.values()):.3f}")
        ours, theirs = results.get("pt2q"), results.get("torchao")
        if isinstance(ours, dict) and isinstance(theirs, dict):
            pipe = lambda r: r["prepare"] + r["calibrate"] + r["convert"]  # noqa: E731
            print(
                f"  ratio pt2q/torchao: prepare+calibrate+convert {pipe(ours) / pipe(theirs):.2f}x, "
                f"with export {sum(ours.values()) / sum(theirs.values()):.2f}x (goal <= 0.5x)"
            )
    print("\n== QAT: prepare_qat, one training step, convert (bench/qat.py)")
    qat_report(a.repeats, flows)
    hist, minmax = observer_cost(a.repeats)
    print(
        f"\n== observers, 8 batches of 1M floats: Histogram {hist * 1e3:.1f} ms, "
        f"MinMax {minmax * 1e3:.1f} ms, ratio {hist / minmax:.2f}x (goal <= 1.2x)"
    )


if __name__ == "__main__":
    main()
