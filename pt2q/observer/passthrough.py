"""Observers that compute no qparams (torchao's ``NoopObserver``, ``RecordingObserver``,
``ReuseInputObserver``); each returns its input unchanged.

* ``NoopObserver`` carries a dtype to convert (float16 by default: convert emits the float16
  round trip, the seed docs' ``float16_static_qconfig`` mode).
* ``RecordingObserver`` keeps a copy of every tensor it sees, for debugging
  (``get_tensor_value()``); it has no qparams, so a model using it is not converted.
* ``ReuseInputObserver`` in a spec means "the same qparams as my input": prepare turns it into
  sharing with the input's observer (``pt2q.prepare.reuse_input``), and leaves the tensor float
  when the input is not observed. torchao accepts it in pt2e specs but its convert then fails.

Prepare builds observers with the spec's fields (``dtype``, ``quant_min``, ...); the ones
these observers have no use for are accepted and ignored.
"""

from __future__ import annotations

from typing import Any

import torch

from pt2q.observer.base import ObserverBase

__all__ = ["NoopObserver", "RecordingObserver", "ReuseInputObserver"]


class _NoQParams(ObserverBase):
    """Pass-through observer whose ``calculate_qparams`` raises (naming the class and node)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def calculate_qparams(self, **kwargs: Any) -> Any:
        raise RuntimeError(
            f"calculate_qparams should not be called for {type(self).__name__} (node "
            f"'{self.node_name}'): it records no statistics to compute qparams from"
        )


class NoopObserver(_NoQParams):
    """Observes nothing; passes ``dtype`` (float16 by default) on to convert."""

    def __init__(
        self, dtype: torch.dtype = torch.float16, custom_op_name: str = "", **kwargs: Any
    ) -> None:
        super().__init__(dtype=dtype, is_dynamic=False)
        self.custom_op = custom_op_name

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}, custom_op={self.custom_op!r}"


class RecordingObserver(_NoQParams):
    """Keeps a copy of every tensor observed, in order, in ``tensor_val``."""

    def __init__(self, dtype: torch.dtype = torch.uint8, **kwargs: Any) -> None:
        super().__init__(dtype=dtype, is_dynamic=False)
        self.tensor_val: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.tensor_val.append(x.detach().clone())
        return x

    def get_tensor_value(self) -> list[torch.Tensor]:
        """Every tensor observed so far (copies), oldest first."""
        return self.tensor_val

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}, recorded={len(self.tensor_val)}"


class ReuseInputObserver(_NoQParams):
    """Marker: quantize like the input (prepare shares the input's observer instead)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(dtype=torch.uint8, is_dynamic=False)
