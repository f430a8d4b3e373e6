"""``X86LoweredModule``: the lowered GraphModule, with a tiered compiled path.

Its ``.graph`` is the eager lowered program (``onednn.qconv_pointwise`` / ``qlinear_pointwise``
and the float remainder); ``GraphModule`` semantics hold: ``print(m.graph)``, counting nodes,
``m.code``, saving, ``torch.compile(m)``.

Calling it (``compile=True``, the default) is tiered, so what runs once is not compiled: the
first call runs the graph eagerly (the oneDNN kernels already prepacked); the second call
compiles the same guarded program ahead of time with AOTInductor and Inductor freezing (the
program ``package_x86`` writes: the int8 passes emit the same oneDNN kernels and fuse the float
remainder, q/dq, layer norms, softmax, into C++ loops), loads it in this process and runs it from
then on: no Dynamo guards and no Python between kernels on each call (ResNet-50 batch 2 ran 5.5%
faster here than under ``torch.compile`` with its C++ wrapper, 11.7 vs 12.4 ms in one process).
A call the compiled program was not built for (another dtype, a static dim changed, a dynamic
dim out of its range, a non-contiguous tensor, non-tensor arguments) runs ``torch.compile`` of
the same program instead, guarded as usual; so do ``mixed_bf16`` modules, explicit
``compile_options`` (they are ``torch.compile``'s), and any program AOTInductor fails on
(``tier_notes`` says why). Editing the graph (``recompile()``) drops the compiled tiers, so the
module then runs exactly its graph. Under Dynamo / FX tracing the graph is what gets traced.
``copy.deepcopy`` copies the graph, attributes and report; the prepacked oneDNN weights (no
storage to copy) and the compiled tiers already built are shared with the copy.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import torch
from torch.fx import GraphModule

from pt2q.lowering.x86.eager import export_with_dims

__all__ = ["X86LoweredModule", "aoti_compile"]


def aoti_compile(
    program: GraphModule, inputs: tuple[Any, ...], dims: list[set[int]], path: str
) -> tuple[str, torch.export.ExportedProgram]:
    """Export ``program`` on ``inputs`` (``dims``: per input, the dims kept dynamic) and write its
    AOTInductor package, compiled with Inductor freezing, to ``path``; returns the path and the
    export (whose placeholders say which shapes the package accepts)."""
    ep = export_with_dims(program, inputs, dims)
    with torch.no_grad():
        written = torch._inductor.aoti_compile_and_package(
            ep, package_path=path, inductor_configs={"freezing": True}
        )
    return written, ep


def _bound(value: Any) -> float:
    """A symbol's range bound as a Python number (torch's integer infinities as +-inf)."""
    from torch.utils._sympy.numbers import int_oo

    if value == int_oo:
        return math.inf
    if value == -int_oo:
        return -math.inf
    return int(value)


class _AotiTier:
    """The loaded AOTInductor program, its C++ wrapper's source (what each call runs), the ops
    that wrapper calls through the proxy executor (by index) and the inputs it accepts: per
    tensor, its dtype and each dim as a fixed size or the (min, max) range of its symbol."""

    def __init__(self, program: GraphModule, args: tuple[torch.Tensor, ...], dims: list[set[int]]):
        with tempfile.TemporaryDirectory() as tmp:
            path, ep = aoti_compile(program, args, dims, os.path.join(tmp, "tier.pt2"))
            self.run: Callable[..., Any] = torch._inductor.aoti_load_package(path)
            with zipfile.ZipFile(path) as z:
                (wrapper,) = [n for n in z.namelist() if n.endswith(".wrapper.cpp")]
                self.wrapper_source = z.read(wrapper).decode()
                extern = [n for n in z.namelist() if n.endswith(".wrapper.json")]
                nodes = json.loads(z.read(extern[0]))["nodes"] if extern else []
                self.extern_ops: list[str] = [n["node"]["target"] for n in nodes]
        ranges = {
            str(sym): (_bound(r.lower), _bound(r.upper)) for sym, r in ep.range_constraints.items()
        }
        user_inputs = set(ep.graph_signature.user_inputs)
        self.accepts: list[tuple[torch.dtype, list[Any]]] = []
        for node in ep.graph.nodes:
            if node.op == "placeholder" and node.name in user_inputs:
                val = node.meta["val"]
                sizes = [d if isinstance(d, int) else ranges[str(d)] for d in val.shape]
                self.accepts.append((val.dtype, sizes))

    def takes(self, args: tuple[Any, ...]) -> bool:
        """Whether the compiled program was built for ``args`` (checked: AOTInductor does not)."""
        if len(args) != len(self.accepts):
            return False
        for a, (dtype, sizes) in zip(args, self.accepts, strict=True):
            if not isinstance(a, torch.Tensor) or a.dtype != dtype or a.dim() != len(sizes):
                return False
            if a.requires_grad or not a.is_contiguous():
                return False
            for size, want in zip(a.shape, sizes, strict=True):
                ok = size == want if isinstance(want, int) else want[0] <= size <= want[1]
                if not ok:
                    return False
        return True


def _opaque_tensors(*modules: torch.nn.Module | None) -> list[torch.Tensor]:
    """The oneDNN-prepacked tensors (no storage: ``copy.deepcopy`` cannot copy them) that
    ``modules`` hold as parameters, buffers or plain attributes."""
    found: list[torch.Tensor] = []
    for module in modules:
        for sub in module.modules() if module is not None else ():
            values = [*sub._parameters.values(), *sub._buffers.values(), *vars(sub).values()]
            found += [v for v in values if isinstance(v, torch.Tensor) and v.is_mkldnn]
    return found


def _call_key(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """What Dynamo guards on for our inputs: tensor shapes, strides and dtypes."""
    return tuple(
        (tuple(a.shape), a.stride(), a.dtype) if isinstance(a, torch.Tensor) else type(a)
        for a in args
    )


class X86LoweredModule(GraphModule):
    """A ``torch.fx.GraphModule`` holding the oneDNN int8 ops (see the module docstring).

    Contract: takes the reference program's inputs, returns its outputs within the x86
    tolerances of ``pt2q.tolerances``; runs under ``torch.no_grad``; the Inductor configuration
    (``freezing``) is patched only around calls with an input signature not seen before, so
    global configuration never changes. ``report`` is the attached ``LoweringReport``.
    """

    _seen: set[tuple[Any, ...]]
    _dims: list[set[int]]
    tier_notes: list[str]  # why a compiled tier was not built (see the module doc)
    _compile_options: dict[str, Any]

    def __init__(
        self,
        lowered: GraphModule,
        source: GraphModule | None,
        mixed_bf16: bool,
        compile_options: dict[str, Any],
        dims: list[set[int]],
        aot: bool = True,
    ) -> None:
        super().__init__(lowered, lowered.graph, class_name="X86LoweredModule")
        self.meta.update(lowered.meta)
        self.__dict__["_source"] = source  # kept out of the module tree
        self.__dict__["_compiled"] = None
        self.__dict__["_aoti"] = None
        self.__dict__["_calls"] = 0
        self.__dict__["tier_notes"] = []
        self.__dict__["_seen"] = set()
        self.mixed_bf16 = mixed_bf16
        self._compile_options = compile_options
        self._dims = dims  # per input, the dims exported as symbolic: compiled dynamic
        self.__dict__["_aot"] = aot
        self.__dict__["_aoti_tried"] = not aot or mixed_bf16  # True: no AOTInductor tier

    def __deepcopy__(self, memo: dict[int, Any]) -> X86LoweredModule:
        """An independent copy of the graph, its attributes and its report. The prepacked oneDNN
        weights are constants of the program and cannot be copied (no storage): both modules
        share them, as they share the compiled tiers already built (loaded, immutable code; a
        ``recompile()`` of either drops only its own)."""
        for t in _opaque_tensors(self, self.__dict__["_source"]):
            memo.setdefault(id(t), t)
        # a GraphModule of a copy of the graph (one of self.graph would take over its owner)
        graph = copy.deepcopy(GraphModule(self, copy.deepcopy(self.graph)), memo)
        source = copy.deepcopy(self.__dict__["_source"], memo)
        options, dims = copy.deepcopy(self._compile_options), copy.deepcopy(self._dims)
        twin = X86LoweredModule(
            graph, source, self.mixed_bf16, options, dims, self.__dict__["_aot"]
        )
        twin.meta = copy.deepcopy(self.meta, memo)
        for key, value in vars(self).items():  # what the lowering attached (its report, ...)
            if key not in vars(twin):
                setattr(twin, key, copy.deepcopy(value, memo))
        if source is not None:  # not after a recompile(): the tiers are the same program's
            for key in ("_compiled", "_aoti", "_calls", "_aoti_tried"):
                twin.__dict__[key] = self.__dict__[key]
            twin.__dict__["_seen"] = set(self._seen)
            twin.__dict__["tier_notes"] = list(self.tier_notes)
        memo[id(self)] = twin
        return twin

    @property
    def report(self) -> Any:
        """The ``pt2q.qdq.LoweringReport`` of this lowering (``lowering_report(m)``)."""
        from pt2q.qdq import read_report

        return read_report(self)

    @property
    def compiled(self) -> bool:
        """Whether calls now run a compiled tier (AOTInductor or ``torch.compile``)."""
        return self.__dict__.get("_aoti") is not None or self.__dict__.get("_compiled") is not None

    @property
    def compiled_tiers(self) -> tuple[str, ...]:
        """The compiled tiers built so far: ``"aotinductor"`` and / or ``"torch.compile"``."""
        built = (("aotinductor", "_aoti"), ("torch.compile", "_compiled"))
        return tuple(name for name, key in built if self.__dict__.get(key) is not None)

    @property
    def aot_wrapper_source(self) -> str | None:
        """The C++ source of the AOTInductor tier's wrapper (the kernels each call runs, in
        order), or None before that tier is built."""
        tier = self.__dict__.get("_aoti")
        return None if tier is None else tier.wrapper_source

    @property
    def aot_extern_ops(self) -> list[str] | None:
        """The ops the AOTInductor tier's wrapper calls through its proxy executor (no C shim),
        by the index its source passes (``aoti_torch_proxy_executor_call_function(.., i, ..)``)."""
        tier = self.__dict__.get("_aoti")
        return None if tier is None else tier.extern_ops

    def recompile(self) -> Any:
        out = super().recompile()
        if "_source" in self.__dict__:  # the graph changed: run exactly the graph from now on
            self.__dict__["_source"] = None
            self.__dict__["_compiled"] = None
            self.__dict__["_aoti"] = None
        return out

    def _aoti_tier(self, args: tuple[Any, ...]) -> _AotiTier | None:
        """The AOTInductor tier, built on the first call that can use it (None: not for this
        module, see the module doc; why in ``tier_notes``)."""
        tier = self.__dict__["_aoti"]
        if tier is not None or self.__dict__["_aoti_tried"]:
            return tier
        if not all(isinstance(a, torch.Tensor) and a.is_contiguous() for a in args):
            return None  # built later, from contiguous tensor arguments
        self.__dict__["_aoti_tried"] = True
        try:
            tier = _AotiTier(self.__dict__["_source"], args, self._dims)
        except Exception as err:  # AOTInductor cannot build it: torch.compile serves instead
            note = f"AOTInductor tier not built ({type(err).__name__}: {err})"
            self.__dict__["tier_notes"].append(note)
            return None
        self.__dict__["_aoti"] = tier
        return tier

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tracing = torch.compiler.is_compiling() or torch.fx._symbolic_trace.is_fx_symbolic_tracing()
        with ExitStack() as stack:
            if not tracing:
                stack.enter_context(torch.no_grad())
            if self.mixed_bf16:
                stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
            source = self.__dict__.get("_source")
            if tracing or source is None or kwargs:
                return super().__call__(*args, **kwargs)
            self.__dict__["_calls"] += 1
            if self.__dict__["_calls"] == 1:
                return super().__call__(*args)  # runs once so far: not worth compiling
            tier = self._aoti_tier(args)
            if tier is not None and tier.takes(args):
                return tier.run(*args)
            compiled = self.__dict__["_compiled"]
            if compiled is None:
                compiled = torch.compile(source, **self._compile_options)
                self.__dict__["_compiled"] = compiled
            key = _call_key(args)
            if key in self._seen:
                return compiled(*args)
            stack.enter_context(torch._inductor.config.patch({"freezing": True}))
            # Detached aliases carry the dynamic marks: the caller's tensors stay as they are.
            marked = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)
            for a, symbolic in zip(marked, self._dims, strict=False):
                for d in sorted(symbolic):
                    torch._dynamo.mark_dynamic(a, d)
            out = compiled(*marked)
            self._seen.add(key)
            return out
