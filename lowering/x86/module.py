"""``X86LoweredModule``: the lowered GraphModule, with a tiered compiled path.

Its ``.graph`` is the eager lowered program (``onednn.qconv_pointwise`` / ``qlinear_pointwise``
and the float remainder); ``GraphModule`` semantics hold: ``print(m.graph)``, counting nodes,
``m.code``, saving, ``torch.compile(m)``.

Calling it (``compile=True``, the default) is tiered, so what runs once is not compiled: the
first call runs the graph eagerly (the oneDNN kernels already prepacked); from the second call
on it runs ``torch.compile`` of the same guarded program with Inductor freezing, whose int8
passes emit the same oneDNN kernels and fuse the float remainder (q/dq, layer norms, softmax)
into C++ loops, called from Inductor's C++ wrapper by default (no Python between kernels:
ResNet-50 batch 2 ran 4% faster here than with the Python wrapper, MiniLM 2%; its compile
takes ~6 s longer, once, in the second call). Editing the graph (``recompile()``) drops the
compiled tier, so the module then runs exactly its graph. Under Dynamo / FX tracing the graph
is what gets traced.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import torch
from torch.fx import GraphModule

__all__ = ["X86LoweredModule"]


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
    _compile_options: dict[str, Any]

    def __init__(
        self,
        lowered: GraphModule,
        source: GraphModule | None,
        mixed_bf16: bool,
        compile_options: dict[str, Any],
        dims: list[set[int]],
    ) -> None:
        super().__init__(lowered, lowered.graph, class_name="X86LoweredModule")
        self.meta.update(lowered.meta)
        self.__dict__["_source"] = source  # kept out of the module tree
        self.__dict__["_compiled"] = None
        self.__dict__["_calls"] = 0
        self.__dict__["_seen"] = set()
        self.mixed_bf16 = mixed_bf16
        self._compile_options = compile_options
        self._dims = dims  # per input, the dims exported as symbolic: compiled dynamic

    @property
    def report(self) -> Any:
        """The ``pt2q.qdq.LoweringReport`` of this lowering (``lowering_report(m)``)."""
        from pt2q.qdq import read_report

        return read_report(self)

    @property
    def compiled(self) -> bool:
        """Whether calls now run the Inductor-compiled tier."""
        return self.__dict__.get("_compiled") is not None

    def recompile(self) -> Any:
        out = super().recompile()
        if "_source" in self.__dict__:  # the graph changed: run exactly the graph from now on
            self.__dict__["_source"] = None
            self.__dict__["_compiled"] = None
        return out

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
