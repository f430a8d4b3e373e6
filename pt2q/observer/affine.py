"""Affine observers: statistics per block of a granularity (``pt2q.affine``).

``AffineQuantizedObserverBase(mapping_type, target_dtype, granularity, quant_min=None,
quant_max=None, eps=None, scale_dtype=None, zero_point_dtype=None, preserve_zero=True,
zero_point_domain=ZeroPointDomain.INT)``: torchao's signature. Prepare also passes the spec's
``dtype`` / ``quant_min`` / ``quant_max`` / ``qscheme`` / ``is_dynamic`` (the spec wins, as in
torchao); ``target_dtype`` defaults to the spec's ``dtype``. Sub-byte targets (``torch.int4``,
``TorchAODType.INT4``) are stored in int8 with the narrowed range (``pt2q.affine.target_dtype``),
so ``self.dtype`` is always a dtype the ``quantized_decomposed`` IR has.

Convert (``pt2q.convert.affine``) turns the observer into per-tensor / per-channel /
per-channel-group q/dq (static) or per-tensor / per-token choose-qparams + q/dq (dynamic).
``min_val`` / ``max_val`` are buffers shaped like the qparams (they travel with ``state_dict``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.affine.block_size import get_block_size
from pt2q.affine.granularity import Granularity
from pt2q.affine.mapping import MappingType, ZeroPointDomain
from pt2q.affine.primitives import block_min_max, choose_qparams_affine_with_min_max
from pt2q.affine.target_dtype import TargetDType, resolve_range
from pt2q.observer.base import ObserverBase, ObserverNotCalibratedError

__all__ = [
    "AffineQuantizedObserverBase",
    "AffineQuantizedMinMaxObserver",
    "AffineQuantizedMovingAverageMinMaxObserver",
    "AffineQuantizedPlaceholderObserver",
]


class AffineQuantizedObserverBase(ObserverBase):
    """Observer of one granularity; subclasses decide how batches merge (``_merge``)."""

    min_val: torch.Tensor
    max_val: torch.Tensor

    def __init__(
        self,
        mapping_type: MappingType,
        target_dtype: TargetDType | None = None,
        granularity: Granularity | None = None,
        quant_min: int | None = None,
        quant_max: int | None = None,
        eps: float | None = None,
        scale_dtype: torch.dtype | None = None,
        zero_point_dtype: torch.dtype | None = None,
        preserve_zero: bool = True,
        zero_point_domain: ZeroPointDomain | None = ZeroPointDomain.INT,
        is_dynamic: bool = False,
        dtype: torch.dtype | None = None,
        **kwargs: Any,
    ) -> None:
        name = type(self).__name__
        if not isinstance(mapping_type, MappingType):
            raise TypeError(f"{name}: mapping_type must be a MappingType, got {mapping_type!r}")
        if not isinstance(granularity, Granularity):
            raise TypeError(
                f"{name}: granularity must be a Granularity (PerTensor(), PerGroup(32), ...), "
                f"got {granularity!r}"
            )
        target = dtype if target_dtype is None else target_dtype
        if target is None:
            raise TypeError(f"{name}: give target_dtype (or a spec dtype)")
        storage, qmin, qmax = resolve_range(target, quant_min, quant_max)
        if dtype is not None and target_dtype is not None:
            spec_storage = resolve_range(dtype, None, None)[0]
            if spec_storage != storage:
                raise ValueError(
                    f"{name}: the spec's dtype {dtype} and target_dtype {target_dtype} disagree "
                    f"(stored as {spec_storage} vs {storage}); make them match"
                )
        super().__init__(dtype=storage, is_dynamic=is_dynamic)
        unknown = set(kwargs) - {"qscheme", "ch_axis", "reduce_range"}
        if unknown:
            raise TypeError(f"{name} got unexpected arguments {sorted(unknown)}")
        self.mapping_type = mapping_type
        self.target_dtype = target
        self.granularity = granularity
        self.quant_min, self.quant_max = qmin, qmax
        self.eps = eps
        self.scale_dtype = scale_dtype
        self.zero_point_dtype = zero_point_dtype
        self.preserve_zero = preserve_zero
        self.zero_point_domain = (
            ZeroPointDomain.INT if zero_point_domain is None else zero_point_domain
        )
        self.qscheme = None  # affine observers are described by granularity, not a qscheme
        # Filled by forward: the block size of the last input and its float dtype.
        self.block_size: tuple[int, ...] | None = None
        self.original_dtype: torch.dtype | None = None
        self.register_buffer("min_val", torch.empty(0))
        self.register_buffer("max_val", torch.empty(0))

    @property
    def has_observed(self) -> bool:
        return self.is_dynamic or self.min_val.numel() > 0

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # min/max take the qparams' shape on first observation; resize before loading.
        for name in ("min_val", "max_val"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def _merge(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() == 0:
            return x
        self.block_size = get_block_size(x.shape, self.granularity)
        self.original_dtype = x.dtype
        if self.is_dynamic:
            return x
        lo, hi = block_min_max(x.detach().float(), self.block_size)
        self._check_finite_stats(x, lo, hi)
        if self.min_val.numel() == 0:
            self.min_val, self.max_val = lo, hi
        elif self.min_val.shape != lo.shape:
            raise ValueError(
                f"{type(self).__name__} at node '{self.node_name}': {self.granularity} of shape "
                f"{tuple(x.shape)} gives qparams of shape {tuple(lo.shape)}, expected "
                f"{tuple(self.min_val.shape)} as before"
            )
        else:
            self.min_val, self.max_val = self._merge(lo, hi)
        return x

    def calculate_qparams(self, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(scale, zero_point) per block, from the recorded statistics."""
        if self.min_val.numel() == 0:
            raise ObserverNotCalibratedError(
                f"{type(self).__name__} at node '{self.node_name}' has no statistics: run "
                "calibration inputs through the prepared model first"
                + (" (dynamic observers choose qparams at run time)" if self.is_dynamic else "")
            )
        return choose_qparams_affine_with_min_max(
            self.min_val,
            self.max_val,
            self.mapping_type,
            self.target_dtype,
            self.quant_min,
            self.quant_max,
            self.eps,
            self.scale_dtype,
            self.zero_point_dtype,
            self.preserve_zero,
            self.zero_point_domain,
        )

    def convert(self, model: GraphModule, observer_node: Node) -> None:
        """Replace ``observer_node`` with ``quantized_decomposed`` q/dq (``pt2q.convert.affine``)."""
        from pt2q.convert.affine import convert_affine_observer

        convert_affine_observer(model, observer_node, self)

    def extra_repr(self) -> str:
        return (
            f"mapping_type={self.mapping_type}, target_dtype={self.target_dtype}, "
            f"granularity={self.granularity}, quant_min={self.quant_min}, "
            f"quant_max={self.quant_max}, zero_point_domain={self.zero_point_domain}, "
            f"is_dynamic={self.is_dynamic}"
        )


class AffineQuantizedMinMaxObserver(AffineQuantizedObserverBase):
    """Running minimum / maximum per block over every batch seen."""

    def _merge(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.minimum(self.min_val, lo), torch.maximum(self.max_val, hi)


class AffineQuantizedMovingAverageMinMaxObserver(AffineQuantizedObserverBase):
    """Moving average of per-block min / max: ``m += averaging_constant * (new - m)``
    (``averaging_constant=1`` keeps only the last batch, e.g. for weights in QAT)."""

    def __init__(self, *args: Any, averaging_constant: float = 0.01, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not 0 < averaging_constant <= 1:
            raise ValueError(f"averaging_constant must be in (0, 1], got {averaging_constant}")
        self.averaging_constant = float(averaging_constant)

    def _merge(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.averaging_constant
        return self.min_val + c * (lo - self.min_val), self.max_val + c * (hi - self.max_val)


class AffineQuantizedPlaceholderObserver(AffineQuantizedObserverBase):
    """No statistics: for dynamic quantization (qparams are chosen at run time)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("is_dynamic", True)
        super().__init__(*args, **kwargs)
        if not self.is_dynamic:
            raise ValueError(
                "AffineQuantizedPlaceholderObserver records no statistics: it serves dynamic "
                "specs only (is_dynamic=True); use AffineQuantizedMinMaxObserver for static ones"
            )
