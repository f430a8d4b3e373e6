"""Random models from an op grammar, drawn with hypothesis.

A model is a start (what the input is) and a list of steps, each valid for the current tensor
kind; every step keeps the batch on dim 0, so a dynamic batch (``torch.export.Dim``) works all
the way through. Kinds and their steps:

=====  ===========  ===========================================================================
kind   shape        steps
=====  ===========  ===========================================================================
img    (N,C,H,W)    conv2d, depthwise conv2d, activation, residual conv, conv reused twice,
                    add/mul scalar, add/mul broadcast parameter, cat of two conv branches,
                    max/avg pool, adaptive avg pool; -> vec (flatten), -> seq (view),
                    -> grid (permute, for 4-D linear)
seq    (N,C,L)      conv1d, activation, residual conv1d, avg/max pool1d; -> tok (permute), -> vec
tok    (N,T,F)      linear, activation, softmax, layer_norm, residual linear, linear reused twice,
                    matmul / bmm with its transpose, slicing, add/mul broadcast; -> seq, -> vec
grid   (N,A,B,F)    linear, activation, layer_norm, residual linear; -> vec (flatten)
vec    (N,F)        linear, activation, softmax, layer_norm, residual linear, cat of two linears,
                    slicing, add/mul scalar; -> tok (view)
=====  ===========  ===========================================================================

Starts: an image, a sequence, tokens (float), token ids through an ``nn.Embedding``, features.
``describe(spec)`` prints the drawn program so a failure can be rebuilt by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
    "silu": F.silu,
    "hardswish": F.hardswish,
    "hardtanh": F.hardtanh,
}
VOCAB = 24


class Act(nn.Module):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ACTIVATIONS[self.name](x)


class Lambda(nn.Module):
    """A parameter-free step; ``fn`` is a module-level function (export traces it)."""

    def __init__(self, name: str, fn: Callable[..., torch.Tensor], *args: Any) -> None:
        super().__init__()
        self.name, self.fn, self.args = name, fn, args

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, *self.args)


class Residual(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.inner(x)


class Twice(nn.Module):
    """The same module applied twice (a reused module: one set of weights, two call sites)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(F.relu(self.inner(x)))


class CatBranches(nn.Module):
    def __init__(self, a: nn.Module, b: nn.Module, dim: int) -> None:
        super().__init__()
        self.a, self.b, self.dim = a, b, dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(x)], dim=self.dim)


class Broadcast(nn.Module):
    """``x + p`` or ``x * p`` with a parameter broadcast over the batch (and spatial) dims."""

    def __init__(self, op: str, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.op = op
        self.p = nn.Parameter(torch.rand(shape) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.p if self.op == "add" else x * self.p


def _scalar(x: torch.Tensor, op: str, c: float) -> torch.Tensor:
    return x + c if op == "add" else x * c


def _flatten(x: torch.Tensor) -> torch.Tensor:
    return torch.flatten(x, 1)


def _permute(x: torch.Tensor, order: tuple[int, ...]) -> torch.Tensor:
    return x.permute(order)


def _view(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return x.reshape(x.shape[0], *shape)


def _slice_last(x: torch.Tensor, n: int) -> torch.Tensor:
    return x[..., :n]


def _slice_dim1(x: torch.Tensor, n: int) -> torch.Tensor:
    return x[:, :n]


def _self_matmul(x: torch.Tensor, op: str) -> torch.Tensor:
    y = x.transpose(1, 2)
    return torch.bmm(x, y) if op == "bmm" else torch.matmul(x, y)


def _softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, dim=-1)


def _pool(x: torch.Tensor, kind: str) -> torch.Tensor:
    return {
        "max_pool2d": lambda: F.max_pool2d(x, 2),
        "avg_pool2d": lambda: F.avg_pool2d(x, 2),
        "adaptive_avg_pool2d": lambda: F.adaptive_avg_pool2d(x, 1),
        "max_pool1d": lambda: F.max_pool1d(x, 2),
        "avg_pool1d": lambda: F.avg_pool1d(x, 2),
    }[kind]()


@dataclass
class Spec:
    """A drawn model: its input, steps (for printing) and the module."""

    start: str
    input_shape: tuple[int, ...]  # without the batch
    dynamic: bool
    seed: int
    steps: list[str] = field(default_factory=list)
    model: nn.Module | None = None

    def example(self, batch: int, gen: torch.Generator) -> torch.Tensor:
        if self.start == "ids":
            return torch.randint(0, VOCAB, (batch, *self.input_shape), generator=gen)
        x = torch.randn((batch, *self.input_shape), generator=gen)
        return x * 2.0 + 0.3  # not centred: zero points matter


def describe(spec: Spec) -> str:
    return (
        f"start={spec.start} input=(N, {', '.join(map(str, spec.input_shape))}) "
        f"dynamic={spec.dynamic} seed={spec.seed}\n  " + "\n  ".join(spec.steps)
    )


class _Builder:
    def __init__(self, draw: Callable[..., Any]) -> None:
        self.draw = draw
        self.layers: list[nn.Module] = []
        self.log: list[str] = []

    def size(self, lo: int, hi: int) -> int:
        return int(self.draw(st.integers(lo, hi)))

    def add(self, module: nn.Module, text: str) -> None:
        self.layers.append(module)
        self.log.append(text)

    # --- img (C, H, W) --------------------------------------------------------------------------
    def img(self, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
        c, h, w = shape
        options = ["conv", "depthwise", "act", "residual", "twice", "scalar", "broadcast", "cat"]
        options += ["pool", "adaptive"] if min(h, w) >= 2 else []
        options += ["flatten", "to_seq", "to_grid"]
        choice = self.draw(st.sampled_from(options))
        if choice == "conv":
            co, k = self.size(1, 12), self.draw(st.sampled_from([1, 3]))
            stride = self.draw(st.sampled_from([1, 2])) if min(h, w) >= 3 else 1
            pad = k // 2
            self.add(nn.Conv2d(c, co, k, stride, pad), f"conv2d({c}->{co}, k{k}, s{stride})")
            return "img", (co, (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1)
        if choice == "depthwise":
            self.add(nn.Conv2d(c, c, 3, 1, 1, groups=c), f"depthwise_conv2d({c})")
            return "img", shape
        if choice == "act":
            name = self.draw(st.sampled_from(sorted(ACTIVATIONS)))
            self.add(Act(name), name)
            return "img", shape
        if choice == "residual":
            self.add(Residual(nn.Conv2d(c, c, 3, 1, 1)), f"x + conv2d({c}->{c})(x)")
            return "img", shape
        if choice == "twice":
            self.add(Twice(nn.Conv2d(c, c, 1)), f"conv2d({c}->{c}) reused twice")
            return "img", shape
        if choice == "scalar":
            op, value = (
                self.draw(st.sampled_from(["add", "mul"])),
                self.draw(st.sampled_from([0.5, 2.0, -1.0])),
            )
            self.add(Lambda(f"{op}_scalar", _scalar, op, value), f"{op} scalar {value}")
            return "img", shape
        if choice == "broadcast":
            op = self.draw(st.sampled_from(["add", "mul"]))
            self.add(Broadcast(op, (1, c, 1, 1)), f"{op} param (1,{c},1,1)")
            return "img", shape
        if choice == "cat":
            a, b = self.size(1, 6), self.size(1, 6)
            module = CatBranches(nn.Conv2d(c, a, 1), nn.Conv2d(c, b, 3, 1, 1), 1)
            self.add(module, f"cat(conv2d({c}->{a}), conv2d({c}->{b}))")
            return "img", (a + b, h, w)
        if choice == "pool":
            kind = self.draw(st.sampled_from(["max_pool2d", "avg_pool2d"]))
            self.add(Lambda(kind, _pool, kind), kind)
            return "img", (c, h // 2, w // 2)
        if choice == "adaptive":
            self.add(
                Lambda("adaptive_avg_pool2d", _pool, "adaptive_avg_pool2d"),
                "adaptive_avg_pool2d(1)",
            )
            return "img", (c, 1, 1)
        if choice == "flatten":
            self.add(Lambda("flatten", _flatten), "flatten")
            return "vec", (c * h * w,)
        if choice == "to_seq":
            self.add(Lambda("view", _view, (c, h * w)), f"view(N, {c}, {h * w})")
            return "seq", (c, h * w)
        self.add(Lambda("permute", _permute, (0, 2, 3, 1)), "permute(0, 2, 3, 1)")
        return "grid", (h, w, c)

    # --- seq (C, L) ------------------------------------------------------------------------------
    def seq(self, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
        c, length = shape
        options = ["conv1d", "act", "residual", "to_tok", "flatten"]
        options += ["pool"] if length >= 2 else []
        choice = self.draw(st.sampled_from(options))
        if choice == "conv1d":
            co, k = self.size(1, 12), self.draw(st.sampled_from([1, 3]))
            self.add(nn.Conv1d(c, co, k, padding=k // 2), f"conv1d({c}->{co}, k{k})")
            return "seq", (co, length)
        if choice == "act":
            name = self.draw(st.sampled_from(sorted(ACTIVATIONS)))
            self.add(Act(name), name)
            return "seq", shape
        if choice == "residual":
            self.add(Residual(nn.Conv1d(c, c, 3, padding=1)), f"x + conv1d({c}->{c})(x)")
            return "seq", shape
        if choice == "pool":
            kind = self.draw(st.sampled_from(["max_pool1d", "avg_pool1d"]))
            self.add(Lambda(kind, _pool, kind), kind)
            return "seq", (c, length // 2)
        if choice == "to_tok":
            self.add(Lambda("permute", _permute, (0, 2, 1)), "permute(0, 2, 1)")
            return "tok", (length, c)
        self.add(Lambda("flatten", _flatten), "flatten")
        return "vec", (c * length,)

    # --- tok (T, F) and grid (A, B, F): linear on 3-D / 4-D inputs ------------------------------
    def tok(self, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
        t, f = shape
        options = ["linear", "act", "softmax", "layer_norm", "residual", "twice", "broadcast"]
        options += ["matmul", "to_seq", "flatten"] + (["slice"] if t >= 2 and f >= 2 else [])
        choice = self.draw(st.sampled_from(options))
        if choice in ("matmul",):
            op = self.draw(st.sampled_from(["matmul", "bmm"]))
            self.add(Lambda(op, _self_matmul, op), f"{op}(x, x^T)")
            return "tok", (t, t)
        if choice == "slice":
            if self.draw(st.booleans()):
                self.add(Lambda("slice", _slice_dim1, t // 2 or 1), f"x[:, :{t // 2 or 1}]")
                return "tok", (t // 2 or 1, f)
            self.add(Lambda("slice", _slice_last, f // 2 or 1), f"x[..., :{f // 2 or 1}]")
            return "tok", (t, f // 2 or 1)
        if choice == "to_seq":
            self.add(Lambda("permute", _permute, (0, 2, 1)), "permute(0, 2, 1)")
            return "seq", (f, t)
        if choice == "flatten":
            self.add(Lambda("flatten", _flatten), "flatten")
            return "vec", (t * f,)
        if choice == "broadcast":
            op = self.draw(st.sampled_from(["add", "mul"]))
            self.add(Broadcast(op, (f,)), f"{op} param ({f},)")
            return "tok", shape
        kind, new_f = self.features(choice, f)
        return "tok", (t, new_f)

    def grid(self, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
        a, b, f = shape
        choice = self.draw(st.sampled_from(["linear", "act", "layer_norm", "residual", "flatten"]))
        if choice == "flatten":
            self.add(Lambda("flatten", _flatten), "flatten")
            return "vec", (a * b * f,)
        _kind, new_f = self.features(choice, f)
        return "grid", (a, b, new_f)

    def features(self, choice: str, f: int) -> tuple[str, int]:
        """A step on the last (feature) dim shared by tok / grid / vec; returns the new size."""
        if choice == "linear":
            fo = self.size(1, 24)
            self.add(nn.Linear(f, fo), f"linear({f}->{fo})")
            return "linear", fo
        if choice == "act":
            name = self.draw(st.sampled_from(sorted(ACTIVATIONS)))
            self.add(Act(name), name)
        elif choice == "softmax":
            self.add(Lambda("softmax", _softmax), "softmax(-1)")
        elif choice == "layer_norm":
            self.add(nn.LayerNorm(f), f"layer_norm({f})")
        elif choice == "residual":
            self.add(Residual(nn.Linear(f, f)), f"x + linear({f}->{f})(x)")
        elif choice == "twice":
            self.add(Twice(nn.Linear(f, f)), f"linear({f}->{f}) reused twice")
        return choice, f

    # --- vec (F,) --------------------------------------------------------------------------------
    def vec(self, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
        (f,) = shape
        options = ["linear", "act", "softmax", "layer_norm", "residual", "cat", "scalar"]
        options += (["slice"] if f >= 2 else []) + (["to_tok"] if f % 2 == 0 else [])
        choice = self.draw(st.sampled_from(options))
        if choice == "cat":
            a, b = self.size(1, 12), self.size(1, 12)
            self.add(
                CatBranches(nn.Linear(f, a), nn.Linear(f, b), 1),
                f"cat(linear({f}->{a}), linear({f}->{b}))",
            )
            return "vec", (a + b,)
        if choice == "scalar":
            op, value = (
                self.draw(st.sampled_from(["add", "mul"])),
                self.draw(st.sampled_from([0.5, 3.0])),
            )
            self.add(Lambda(f"{op}_scalar", _scalar, op, value), f"{op} scalar {value}")
            return "vec", shape
        if choice == "slice":
            self.add(Lambda("slice", _slice_last, f // 2), f"x[:, :{f // 2}]")
            return "vec", (f // 2,)
        if choice == "to_tok":
            self.add(Lambda("view", _view, (2, f // 2)), f"view(N, 2, {f // 2})")
            return "tok", (2, f // 2)
        _kind, new_f = self.features(choice, f)
        return "vec", (new_f,)


STARTS = ("img", "seq", "tok", "ids", "vec")


@st.composite
def models(draw: Callable[..., Any], max_steps: int = 6, starts: tuple[str, ...] = STARTS) -> Spec:
    """A random model (``Spec.model``) and its description."""
    start = draw(st.sampled_from(starts))
    b = _Builder(draw)
    shape: tuple[int, ...]
    if start == "img":
        shape = (b.size(1, 4), b.size(3, 9), b.size(3, 9))
    elif start == "seq":
        shape = (b.size(1, 6), b.size(2, 12))
    elif start == "vec":
        shape = (b.size(2, 24),)
    else:
        shape = (b.size(1, 6), b.size(2, 16))
    spec = Spec(
        start,
        shape if start != "ids" else shape[:1],
        draw(st.booleans()),
        draw(st.integers(0, 2**16)),
    )
    kind, state = start, shape
    if start == "ids":
        b.add(nn.Embedding(VOCAB, shape[1]), f"embedding({VOCAB}, {shape[1]})")
        kind = "tok"
    for _ in range(draw(st.integers(1, max_steps))):
        kind, state = getattr(b, kind)(state)
    torch.manual_seed(spec.seed)
    for layer in b.layers:  # fresh weights from the drawn seed (construction order is fixed)
        for p in layer.parameters():
            with torch.no_grad():
                p.copy_(torch.randn(p.shape) * (0.5 / max(1, p.shape[-1]) ** 0.5) + 0.01)
    spec.steps = b.log
    spec.model = nn.Sequential(*b.layers).eval()
    return spec
