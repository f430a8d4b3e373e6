"""The callable a lowering returns: Inductor-compiled int8 code with scoped configuration."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import torch
from torch.fx import GraphModule

from pt2q.lowering.x86.coverage import KernelRecorder, LoweringReport

__all__ = ["X86LoweredModule", "inductor_options"]


def inductor_options(recorder: KernelRecorder | None) -> dict[str, Any]:
    """The Inductor configuration the lowering needs, applied only while it compiles.

    ``freezing`` makes parameters constants so the int8 passes can prepack weights once;
    Dynamo reads it at trace time, so it must be set around the call, not just passed to
    ``torch.compile(options=...)``.
    """
    options: dict[str, Any] = {"freezing": True}
    if recorder is not None:
        options["post_grad_custom_post_pass"] = recorder
    return options


def _call_key(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """What Dynamo guards on for our inputs: tensor shapes, strides and dtypes."""
    return tuple(
        (tuple(a.shape), a.stride(), a.dtype) if isinstance(a, torch.Tensor) else type(a)
        for a in args
    )


class X86LoweredModule(torch.nn.Module):
    """Runs the reference program through ``torch.compile`` with Inductor freezing.

    Contract: ``forward`` takes the reference program's inputs and returns its outputs (within
    ``pt2q.tolerances.LOWERED_VS_REFERENCE_STEPS`` per quantized value). It runs under
    ``torch.no_grad``. The Inductor configuration is patched only around a call with an input
    signature not seen before (when Dynamo may compile), so the global configuration never
    changes for the rest of the process and the steady-state call pays no patching cost.
    ``report`` says which conv / linear nodes run as oneDNN int8 kernels.
    """

    def __init__(
        self,
        reference: GraphModule,
        recorder: KernelRecorder,
        report_fn: Callable[[KernelRecorder], LoweringReport],
        mixed_bf16: bool,
        compile_options: dict[str, Any],
    ) -> None:
        super().__init__()
        self.reference = reference
        self.mixed_bf16 = mixed_bf16
        self._recorder = recorder
        self._report_fn = report_fn
        self._compile_options = compile_options
        # Kept out of the module tree: the compiled wrapper shares `reference`'s parameters.
        self.__dict__["_compiled"] = torch.compile(reference, **compile_options)
        self._seen: set[tuple[Any, ...]] = set()
        self._report: LoweringReport | None = None

    @property
    def report(self) -> LoweringReport:
        """Per-node kernel report of the latest compilation (raises before the first call)."""
        if self._report is None:
            raise RuntimeError(
                "X86LoweredModule.report: nothing compiled yet; call the module once "
                "(lower_pt2e_quantized_to_x86 does so with example_inputs)"
            )
        return self._report

    def forward(self, *args: Any) -> Any:
        key = _call_key(args)
        with ExitStack() as stack:
            stack.enter_context(torch.no_grad())
            if self.mixed_bf16:
                stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
            if key in self._seen:
                return self._compiled(*args)
            compilations = self._recorder.compilations
            stack.enter_context(torch._inductor.config.patch(inductor_options(self._recorder)))
            out = self._compiled(*args)
            self._seen.add(key)
            if self._recorder.compilations != compilations or self._report is None:
                self._report = self._report_fn(self._recorder)
            return out
