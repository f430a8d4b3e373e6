"""x86 int8 benchmark: fp32 eager, fp32 torch.compile, pt2q int8 lowered, torchao int8.

One run, side by side, median latency of >= 20 iterations after warm-up, then ratios.

    .venv/bin/python bench/x86.py --threads 2                  # all four models
    .venv/bin/python bench/x86.py --models mlp cnn --iters 50

fp32 torch.compile uses Inductor freezing too (weights prepacked by mkldnn), so the int8 ratio
is int8 kernels against the best fp32 Inductor code. Activations are quantized with
``reduce_range`` on CPUs without VNNI (where full-range uint8 would saturate oneDNN's int16
intermediate; pt2q then keeps those nodes float, see lowering/x86/isa.py). torchao 0.18 runs
when importable (its X86InductorQuantizer, prepare/convert, then torch.compile + freezing).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from pt2q.lowering.x86 import detect_isa, lower_pt2e_quantized_to_x86
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizers.x86_inductor_quantizer import (
    X86InductorQuantizer,
    get_default_x86_inductor_quantization_config,
)


class MLP(nn.Module):
    """4 linear layers 512 -> 512 with ReLU, on (8, 128, 512) activations."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(512, 512) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < 3:
                x = torch.relu(x)
        return x


class CNN(nn.Module):
    """3 convs of 64 channels with ReLU, pools, linear head; (32, 3, 32, 32) input."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 64, 3, padding=1)
        self.c2 = nn.Conv2d(64, 64, 3, padding=1)
        self.c3 = nn.Conv2d(64, 64, 3, padding=1)
        self.fc = nn.Linear(64 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.c1(x))
        x = torch.max_pool2d(torch.relu(self.c2(x)), 2)  # (32, 64, 16, 16)
        x = torch.max_pool2d(torch.relu(self.c3(x)), 2)  # (32, 64, 8, 8)
        return self.fc(torch.flatten(x, 1))


class _Logits(nn.Module):
    """Wraps a transformers model so export sees one tensor in, one tensor out."""

    def __init__(self, model: nn.Module, key: str) -> None:
        super().__init__()
        self.model = model
        self.key = key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self.model(x), self.key)


def _resnet50() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    from transformers import ResNetConfig, ResNetForImageClassification

    model = ResNetForImageClassification(ResNetConfig())  # ResNet-50 layout, random weights
    return _Logits(model, "logits"), (torch.randn(2, 3, 224, 224),)


def _bert_base() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    from transformers import BertConfig, BertModel

    model = BertModel(BertConfig(attn_implementation="sdpa"))  # bert-base: 12 x 768
    return _Logits(model, "last_hidden_state"), (torch.randint(0, 30522, (1, 128)),)


MODELS: dict[str, Callable[[], tuple[nn.Module, tuple[torch.Tensor, ...]]]] = {
    "mlp": lambda: (MLP(), (torch.randn(8, 128, 512),)),
    "cnn": lambda: (CNN(), (torch.randn(32, 3, 32, 32),)),
    "resnet50": _resnet50,
    "bert_base": _bert_base,
}


def median_ms(fns: dict[str, Callable[[], Any]], warmup: int, iters: int) -> dict[str, float]:
    """Median wall time in milliseconds of each ``fns`` entry over ``iters`` calls.

    Calls are interleaved (one call of each variant per round), so load from other processes
    on a shared machine falls on all variants alike instead of on whichever ran last.
    """
    times: dict[str, list[float]] = {k: [] for k in fns}
    with torch.no_grad():
        for _ in range(warmup):
            for fn in fns.values():
                fn()
        for _ in range(iters):
            for k, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def _pt2q_int8(model: nn.Module, inputs: tuple[torch.Tensor, ...], reduce_range: bool) -> Any:
    ep = torch.export.export(model, inputs)
    q = X86InductorQuantizer().set_global(
        get_default_x86_inductor_quantization_config(reduce_range=reduce_range)
    )
    prepared = prepare_pt2e(ep.module(), q)
    with torch.no_grad():
        prepared(*inputs)
    low = lower_pt2e_quantized_to_x86(convert_pt2e(prepared), inputs)
    report = low.report
    print(f"    pt2q: {len(report.lowered())}/{len(report.nodes)} conv/linear as int8 kernels")
    return low


def _torchao_int8(model: nn.Module, inputs: tuple[torch.Tensor, ...], reduce_range: bool) -> Any:
    try:
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e as ao_convert
        from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e as ao_prepare
    except ImportError:
        return None
    ep = torch.export.export(model, inputs)
    q = xiq.X86InductorQuantizer().set_global(
        xiq.get_default_x86_inductor_quantization_config(reduce_range=reduce_range)
    )
    prepared = ao_prepare(ep.module(), q)
    with torch.no_grad():
        prepared(*inputs)
    converted = ao_convert(prepared)
    compiled = torch.compile(converted)
    with torch.no_grad(), torch._inductor.config.patch(freezing=True):
        compiled(*inputs)  # compile now, with freezing, like torchao's recipe

    def run(*args: torch.Tensor) -> Any:
        with torch._inductor.config.patch(freezing=True):
            return compiled(*args)

    return run


def _fp32_compiled(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> Any:
    compiled = torch.compile(model)
    with torch.no_grad(), torch._inductor.config.patch(freezing=True):
        compiled(*inputs)
    return compiled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    if args.iters < 20:
        parser.error(f"--iters must be >= 20 (median of at least 20), got {args.iters}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    isa = detect_isa()
    reduce_range = not isa.exact_u8s8
    print(
        f"torch {torch.__version__}, {args.threads} threads, CPU int8: {isa.describe()}, "
        f"reduce_range={reduce_range}; median of {args.iters} after {args.warmup} warm-up"
    )
    rows = []
    for name in args.models:
        model, inputs = MODELS[name]()
        model.eval()
        print(f"[{name}] building ...", flush=True)
        runs: dict[str, Any] = {"fp32 eager": model, "fp32 compile": _fp32_compiled(model, inputs)}
        runs["pt2q int8"] = _pt2q_int8(model, inputs, reduce_range)
        try:
            ao = _torchao_int8(model, inputs, reduce_range)
        except Exception as e:  # noqa: BLE001 - the peer failing is a result, not a crash
            print(f"    torchao int8 failed: {type(e).__name__}: {e}")
            ao = None
        if ao is not None:
            runs["torchao int8"] = ao
        calls = {k: (lambda f=f, xs=inputs: f(*xs)) for k, f in runs.items()}
        ms = median_ms(calls, args.warmup, args.iters)
        rows.append((name, ms))
        print(f"[{name}] " + ", ".join(f"{k} {v:.2f} ms" for k, v in ms.items()), flush=True)
    print()
    head = f"{'model':<10} {'fp32 eager':>11} {'fp32 comp':>10} {'pt2q int8':>10} "
    head += f"{'torchao':>9} {'int8/comp':>10} {'int8/eager':>11} {'pt2q/ao':>8}"
    print(head)
    for name, ms in rows:
        ao = ms.get("torchao int8")
        ao_ms = "n/a" if ao is None else f"{ao:.2f}ms"
        ao_ratio = "n/a" if ao is None else f"{ao / ms['pt2q int8']:.2f}x"
        line = (
            f"{name:<10} {ms['fp32 eager']:>9.2f}ms {ms['fp32 compile']:>8.2f}ms "
            f"{ms['pt2q int8']:>8.2f}ms {ao_ms:>9} "
            f"{ms['fp32 compile'] / ms['pt2q int8']:>9.2f}x "
            f"{ms['fp32 eager'] / ms['pt2q int8']:>10.2f}x "
            f"{ao_ratio:>8}"
        )
        print(line)


if __name__ == "__main__":
    main()
