"""The observer interface every pt2q observer (and fake-quantizer) implements.

Contract used by ``prepare_pt2e`` / ``convert_pt2e``:

* constructed with keyword arguments only: ``dtype``, ``quant_min``, ``quant_max``, ``qscheme``,
  ``ch_axis`` (per-channel only), ``is_dynamic``, plus the observer's own (``eps``,
  ``reduce_range``, ``averaging_constant``, ...). Prepare builds each observer as
  ``spec.observer_or_fake_quant_ctr.with_args(**fields_of_the_spec)()``.
* ``forward(x)`` records statistics and returns ``x`` unchanged (fake-quantizers return the
  fake-quantized tensor). Non-finite data raises ``NonFiniteObservationError`` naming
  ``self.node_name`` (prepare sets it to the graph node the observer watches).
* ``calculate_qparams()`` -> ``(scale, zero_point)``; raises ``ObserverNotCalibratedError``
  (naming the node) if nothing was observed.
* ``has_observed`` tells whether any data was seen; convert uses it to refuse uncalibrated
  activation observers.
* optional ``convert(model, observer_node)``: an observer that wants to emit its own ops
  replaces ``observer_node`` itself; convert then skips its default q/dq rewrite.
* statically quantized (integer, not dynamic) observers of non-constants keep a bounded value
  sample for ``pt2q.health`` (``health_sample`` / ``health_seen``, see ``pt2q.observer.sample``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn
from torch._subclasses.fake_tensor import is_fake

from pt2q.observer.partial import with_args
from pt2q.observer.sample import merge_into_sample

__all__ = [
    "ObserverBase",
    "ObserverNotCalibratedError",
    "NonFiniteObservationError",
]


class ObserverNotCalibratedError(RuntimeError):
    """calculate_qparams() on an observer that never saw data."""


class NonFiniteObservationError(ValueError):
    """NaN or inf in observed data."""


class ObserverBase(ABC, nn.Module):
    """Base of all observers: records statistics of the tensors flowing through it."""

    with_args: ClassVar[Any] = classmethod(with_args)
    # False where a wrapped observer keeps the sample instead (FakeQuantize).
    keeps_health_sample: ClassVar[bool] = True
    health_sample: torch.Tensor

    def __init__(
        self,
        dtype: torch.dtype = torch.uint8,
        is_dynamic: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.dtype = dtype
        self.is_dynamic = is_dynamic
        # Set by prepare: the fx node this observer watches, for error messages.
        self.node_name: str = "<unattached observer>"
        # Set by prepare_pt2e (PTQ) on observers of constants (weights): their input never
        # changes, so after the first observation further calls are skipped.
        self.observes_constant: bool = False
        # Bounded value sample for pt2q.health (non-persistent: state_dict is unchanged).
        self.register_buffer("health_sample", torch.empty(0), persistent=False)
        self.health_seen: int = 0
        self._health_batches: int = 0

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if self.observes_constant and self.has_observed:
            return x
        if is_fake(x):
            # Traced with fake tensors (e.g. scan / while_loop working out their schema when a
            # weight requires grad): nothing real to record, and the statistics stay real.
            return x
        out = super().__call__(x, *args, **kwargs)
        if self._samples_health(x):
            self.health_sample, self.health_seen = merge_into_sample(
                self.health_sample, self.health_seen, x, self._health_batches
            )
            self._health_batches += 1
        return out

    def _samples_health(self, x: torch.Tensor) -> bool:
        """Whether this call feeds the health sample: static integer observers of activations,
        eager calls only (never while torch.compile / torch.export traces the model)."""
        return (
            self.keeps_health_sample
            and not self.observes_constant
            and not self.is_dynamic
            and not self.dtype.is_floating_point
            and isinstance(x, torch.Tensor)
            and x.is_floating_point()
            and not torch.compiler.is_compiling()
            and not torch.compiler.is_exporting()
        )

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def calculate_qparams(self, **kwargs: Any) -> Any: ...

    @property
    def has_observed(self) -> bool:
        """Whether forward() has seen any data (observers without statistics say True)."""
        return True

    def _check_finite_stats(self, x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> None:
        """NaN/inf check from the min/max already computed (aminmax propagates NaN and inf):
        O(channels) instead of a full pass over ``x``; the full pass only builds the error."""
        if not bool(torch.isfinite(lo).all() & torch.isfinite(hi).all()):
            self._check_finite(x)

    def _check_finite(self, x: torch.Tensor) -> None:
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            n_nan = int(torch.isnan(x).sum())
            n_inf = int(torch.isinf(x).sum())
            raise NonFiniteObservationError(
                f"{type(self).__name__} at node '{self.node_name}' observed non-finite values "
                f"({n_nan} NaN, {n_inf} inf of {x.numel()} elements, shape {tuple(x.shape)}); "
                "calibration data (or the model) produces NaN/inf here"
            )
