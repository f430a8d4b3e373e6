"""QAT cost: prepare_qat_pt2e, one training step and convert_pt2e after QAT, next to a PTQ convert
of the same model, pt2q beside torchao 0.18 when installed (``pip install -e ".[bench]"``).

    .venv/bin/python bench/qat.py [--repeats 3] [--threads 2]

Models: the digits CNN of the tests (3 conv-bn-relu) and a ResNet-style CNN from a transformers
config (random weights, no download; 17 conv-bn). Quantizer: X86InductorQuantizer (QAT config for
the QAT flow, default config for PTQ) in both libraries. Each figure is the median over repeats
(seconds). Printed ratios: QAT convert / PTQ convert per library (goal <= 5x; torchao re-traces
its fold patterns with torch.export at convert) and pt2q / torchao per stage.
"""

from __future__ import annotations

import copy
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch
from common import available_flows, median_times, parse_bench_args

QAT_STAGES = ("export", "prepare_qat", "train_step", "convert_qat")
PTQ_STAGES = ("prepare", "calibrate", "convert_ptq")


def digits_cnn() -> tuple[torch.nn.Module, torch.Tensor]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from digits import DigitsCNN

    torch.manual_seed(0)
    return DigitsCNN(), torch.rand(32, 1, 8, 8)


def resnet_style() -> tuple[torch.nn.Module, torch.Tensor]:
    from transformers import ResNetConfig, ResNetModel

    torch.manual_seed(0)
    cfg = ResNetConfig(embedding_size=32, hidden_sizes=[32, 64, 128, 256], depths=[2, 2, 2, 2])
    return ResNetModel(cfg), torch.randn(4, 3, 64, 64)


def _api(flow: str) -> dict[str, Any]:
    if flow == "pt2q":
        from pt2q.export_utils import move_exported_model_to_eval
        from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e, prepare_qat_pt2e
        from pt2q.quantizers.x86_inductor_quantizer import (
            X86InductorQuantizer,
            get_default_x86_inductor_quantization_config,
        )
    else:
        from torchao.quantization.pt2e import move_exported_model_to_eval
        from torchao.quantization.pt2e.quantize_pt2e import (
            convert_pt2e,
            prepare_pt2e,
            prepare_qat_pt2e,
        )
        from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
            X86InductorQuantizer,
            get_default_x86_inductor_quantization_config,
        )
    return {
        "to_eval": move_exported_model_to_eval,
        "convert": convert_pt2e,
        "prepare": prepare_pt2e,
        "prepare_qat": prepare_qat_pt2e,
        "quantizer": lambda qat: X86InductorQuantizer().set_global(
            get_default_x86_inductor_quantization_config(is_qat=qat)
        ),
    }


def _output(out: Any) -> torch.Tensor:
    """The first tensor of a model output (transformers returns a ModelOutput)."""
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "to_tuple"):
        out = out.to_tuple()
    return _output(out[0])


def run_qat(flow: str, model: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    api = _api(flow)
    times: dict[str, float] = {}
    t = time.perf_counter()
    gm = torch.export.export(copy.deepcopy(model).train(), (x,)).module()
    times["export"] = time.perf_counter() - t
    t = time.perf_counter()
    prepared = api["prepare_qat"](gm, api["quantizer"](True))
    times["prepare_qat"] = time.perf_counter() - t
    opt = torch.optim.SGD(prepared.parameters(), lr=1e-3)
    t = time.perf_counter()
    loss = _output(prepared(x)).square().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    times["train_step"] = time.perf_counter() - t
    api["to_eval"](prepared)
    t = time.perf_counter()
    api["convert"](prepared)
    times["convert_qat"] = time.perf_counter() - t
    return times


def run_ptq(flow: str, model: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    api = _api(flow)
    times: dict[str, float] = {}
    gm = torch.export.export(copy.deepcopy(model).eval(), (x,)).module()
    t = time.perf_counter()
    prepared = api["prepare"](gm, api["quantizer"](False))
    times["prepare"] = time.perf_counter() - t
    t = time.perf_counter()
    with torch.no_grad():
        prepared(x)
    times["calibrate"] = time.perf_counter() - t
    t = time.perf_counter()
    api["convert"](prepared)
    times["convert_ptq"] = time.perf_counter() - t
    return times


def qat_report(repeats: int, flows: list[str]) -> None:
    """Print QAT stage times (and PTQ convert for the ratio) per model and flow."""
    for name, build in (("digits-cnn", digits_cnn), ("resnet-style", resnet_style)):
        model, x = build()
        torch.export.export(copy.deepcopy(model).train(), (x,))  # warm-up: first export is slower
        results: dict[str, dict[str, float] | str] = {}
        for flow in flows:
            try:
                qat = median_times(lambda f=flow, m=model, i=x: run_qat(f, m, i), repeats)
                ptq = median_times(lambda f=flow, m=model, i=x: run_ptq(f, m, i), repeats)
                results[flow] = {**qat, **ptq}
            except Exception as e:  # report a crashing flow, do not stop
                results[flow] = f"FAILED: {type(e).__name__}: {str(e).splitlines()[0][:80]}"
                traceback.print_exc(limit=0)
        print(f"\n== {name}")
        for flow, r in results.items():
            if isinstance(r, str):
                print(f"  {flow:8s} {r}")
                continue
            cells = "  ".join(f"{s}={r[s]:.3f}" for s in QAT_STAGES + PTQ_STAGES)
            ratio = r["convert_qat"] / r["convert_ptq"]
            print(f"  {flow:8s} {cells}")
            print(f"  {flow:8s} QAT convert / PTQ convert = {ratio:.1f}x (goal <= 5x)")
        ours, theirs = results.get("pt2q"), results.get("torchao")
        if isinstance(ours, dict) and isinstance(theirs, dict):
            cells = "  ".join(f"{s}={ours[s] / theirs[s]:.2f}x" for s in QAT_STAGES)
            print(f"  ratio pt2q/torchao: {cells}")


def main() -> None:
    a = parse_bench_args()
    qat_report(a.repeats, available_flows())


if __name__ == "__main__":
    main()
