"""Errors raised by the prepare/convert flow. Each message names the node, module or argument,
what was expected and what was found."""

from __future__ import annotations

__all__ = [
    "NotAnExportedModelError",
    "AnnotationError",
    "NotPreparedError",
    "CalibrationError",
    "InvalidArgumentError",
]


class NotAnExportedModelError(TypeError):
    """prepare/convert got something other than an exported ``torch.fx.GraphModule``."""


class AnnotationError(ValueError):
    """A quantizer wrote an annotation prepare cannot honour (non-Node input, conflicting or
    dangling shared spec, ...)."""


class NotPreparedError(ValueError):
    """convert_pt2e got a model that prepare_pt2e / prepare_qat_pt2e did not produce."""


class CalibrationError(RuntimeError):
    """convert_pt2e found activation observers that never saw data."""


class InvalidArgumentError(ValueError, AssertionError):
    """A bad argument to a torchao-named helper (range, dtype, spec, ch_axis). torchao checks
    these with ``assert``; this is a ValueError and an AssertionError, so both catch it."""
