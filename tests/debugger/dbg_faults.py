"""Models with one injected quantization fault, for the root-cause tests.

* ``TinyResNet`` (conv-bn-relu stem, three basic blocks with residual adds, pool, fc) quantized
  with X86InductorQuantizer; ``wrong_weight_scale`` multiplies the per-channel weight scales of
  one conv's dequantize by a factor (a wrong scale on that conv only).
* ``TinyBert`` (embeddings, 2 encoder layers with an explicit ``scores + mask_bias -> softmax``):
  ``xnnpack_quantize(..., quantize_masks=True)`` forces the mask adds quantized through the
  quantizer's explicit opt-in (``set_mask_quantization``); ``quantize_mask_add`` instead puts a
  uint8 q/dq with the add's min/max range after the mask add of one layer of an x86-quantized
  program (a single fault at a known node).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.fx import GraphModule, Node

from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizers import (
    X86InductorQuantizer,
    XNNPACKQuantizer,
    get_default_x86_inductor_quantization_config,
    get_symmetric_quantization_config,
)

__all__ = [
    "TinyResNet",
    "TinyBert",
    "x86_quantize",
    "xnnpack_quantize",
    "wrong_weight_scale",
    "quantize_mask_add",
    "bert_inputs",
]

qd = torch.ops.quantized_decomposed


class _Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + x)


class TinyResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.blocks = nn.Sequential(_Block(16), _Block(16), _Block(16))
        self.fc = nn.Linear(16, 10)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                with torch.no_grad():
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 2.0)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.stem(x)))
        x = self.blocks(x)
        return self.fc(x.mean((2, 3)))


class _Layer(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.up, self.down = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        h = self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, s, h, d // h).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // h)
        probs = torch.softmax(scores + mask_bias, dim=-1)
        ctx = (probs @ v).transpose(1, 2).reshape(b, s, d)
        x = self.ln1(x + self.o(ctx))
        return self.ln2(x + self.down(torch.nn.functional.gelu(self.up(x))))


class TinyBert(nn.Module):
    def __init__(self, vocab: int = 100, d: int = 32, heads: int = 4, layers: int = 2) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(64, d) * 0.1)
        self.ln = nn.LayerNorm(d)
        self.layers = nn.ModuleList(_Layer(d, heads) for _ in range(layers))
        self.eval()

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.ln(self.emb(ids) + self.pos[: ids.shape[1]])
        mask_bias = (1.0 - mask[:, None, None, :].float()) * -10000.0
        for layer in self.layers:
            x = layer(x, mask_bias)
        return x


def bert_inputs(n: int, seed: int, batch: int = 4, seq: int = 16) -> list[tuple[torch.Tensor, ...]]:
    """``n`` (ids, mask) batches; each row has its last quarter or more padded out."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(0, 100, (batch, seq), generator=g)
        mask = torch.ones(batch, seq, dtype=torch.int64)
        for i in range(batch):
            mask[i, seq - 4 - 2 * i :] = 0
        out.append((ids, mask))
    return out


def x86_quantize(
    model: nn.Module, calib: list[tuple[torch.Tensor, ...]]
) -> tuple[torch.export.ExportedProgram, GraphModule]:
    """(float ExportedProgram, converted GraphModule) with the default x86 config, no handle
    step: the debugger derives handles from provenance."""
    ep = torch.export.export(model, calib[0])
    quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(ep.module(), quantizer)
    with torch.no_grad():
        for args in calib:
            prepared(*args)
    return ep, convert_pt2e(prepared)


def xnnpack_quantize(
    model: nn.Module, calib: list[tuple[torch.Tensor, ...]], quantize_masks: bool
) -> tuple[torch.export.ExportedProgram, GraphModule]:
    """(float ExportedProgram, converted GraphModule), XNNPACK symmetric config; with
    ``quantize_masks`` the ops carrying masking constants are quantized too (opt-in)."""
    ep = torch.export.export(model, calib[0])
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config())
    quantizer.set_mask_quantization(quantize_masks)
    prepared = prepare_pt2e(ep.module(), quantizer)
    with torch.no_grad():
        for args in calib:
            prepared(*args)
    return ep, convert_pt2e(prepared)


def _weight_dq(conv: Node) -> Node:
    w = conv.args[1]
    assert isinstance(w, Node) and w.target == qd.dequantize_per_channel.default, w
    return w


def wrong_weight_scale(
    quant: GraphModule, conv_index: int, factor: float
) -> tuple[GraphModule, str]:
    """A copy of ``quant`` whose ``conv_index``-th conv dequantizes its weight with scales times
    ``factor``; returns (copy, name of that conv node)."""
    bad = copy.deepcopy(quant)
    convs = [n for n in bad.graph.nodes if n.target == torch.ops.aten.conv2d.default]
    conv = convs[conv_index]
    dq = _weight_dq(conv)
    scales = dq.args[1]
    assert isinstance(scales, Node) and scales.op == "get_attr"
    owner, _, attr = str(scales.target).rpartition(".")
    mod = bad.get_submodule(owner) if owner else bad
    setattr(mod, attr, getattr(mod, attr) * factor)
    return bad, conv.name


def quantize_mask_add(
    quant: GraphModule, layer: int, calib: list[tuple[torch.Tensor, ...]]
) -> tuple[GraphModule, str]:
    """A copy of ``quant`` with a uint8 q/dq (min/max range over ``calib``) after the
    ``layer``-th ``scores + mask_bias`` add; returns (copy, name of that add)."""
    bad = copy.deepcopy(quant)
    adds = [
        n
        for n in bad.graph.nodes
        if n.target == torch.ops.aten.add.Tensor
        and any(u.target == torch.ops.aten.softmax.int for u in n.users)
    ]
    add = adds[layer]
    lo, hi = 0.0, 0.0
    values: list[torch.Tensor] = []

    class _Rec(torch.fx.Interpreter):
        def run_node(self, n: Node) -> object:
            out = super().run_node(n)
            if n is add:
                values.append(out)
            return out

    for args in calib:
        with torch.no_grad():
            _Rec(bad).run(*args)
    lo = min(lo, min(float(v.min()) for v in values))
    hi = max(hi, max(float(v.max()) for v in values))
    scale = (hi - lo) / 255.0
    zp = int(round(-lo / scale))
    users = list(add.users)
    with bad.graph.inserting_after(add):
        q = bad.graph.call_function(
            qd.quantize_per_tensor.default, (add, scale, zp, 0, 255, torch.uint8)
        )
    with bad.graph.inserting_after(q):
        dq = bad.graph.call_function(
            qd.dequantize_per_tensor.default, (q, scale, zp, 0, 255, torch.uint8)
        )
    for u in users:
        u.replace_input_with(add, dq)
    bad.recompile()
    return bad, add.name
