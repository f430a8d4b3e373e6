"""Quantization specs: frozen, self-validating descriptions of how one tensor is quantized.

A quantizer writes these into ``node.meta["quantization_annotation"]``; ``prepare_pt2e`` turns
them into observers or fake-quantizers. Names and fields follow
``torchao.quantization.pt2e.quantizer`` so user code ports by changing imports only. Unlike
torchao, every spec checks its own values and the error names the field and the value found.
"""

from __future__ import annotations

import math
from abc import ABC
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch.fx import Node

from pt2q.qdq.meta import Q_ANNOTATION_KEY

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "Q_ANNOTATION_KEY",
    "QuantizationSpecBase",
    "QuantizationSpec",
    "FixedQParamsQuantizationSpec",
    "EdgeOrNode",
    "SharedQuantizationSpec",
    "DerivedQuantizationSpec",
    "QuantizationAnnotation",
    "QuantizationConfig",
    "ObserverOrFakeQuantize",
    "ObserverOrFakeQuantizeConstructor",
    "dtype_range",
]


# An observer or fake-quant module instance (pt2q.observer / pt2q.fake_quantize).
ObserverOrFakeQuantize = torch.nn.Module
# A callable building one: a class, or ``Cls.with_args(...)``.
ObserverOrFakeQuantizeConstructor = Callable[..., torch.nn.Module]

# An input edge (producer, consumer) or a node's output value.
EdgeOrNode = tuple[Node, Node] | Node

_PER_TENSOR = (torch.per_tensor_affine, torch.per_tensor_symmetric)
_PER_CHANNEL = (
    torch.per_channel_affine,
    torch.per_channel_symmetric,
    torch.per_channel_affine_float_qparams,
)
_QSCHEMES = _PER_TENSOR + _PER_CHANNEL


def dtype_range(dtype: torch.dtype) -> tuple[int, int] | None:
    """Integer range ``(qmin, qmax)`` of a quantized storage dtype, or None for float dtypes."""
    if dtype.is_floating_point or dtype.is_complex or dtype == torch.bool:
        return None
    info = torch.iinfo(dtype)
    return int(info.min), int(info.max)


def _check_range(owner: str, dtype: Any, quant_min: int | None, quant_max: int | None) -> None:
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"{owner}.dtype must be a torch.dtype, got {dtype!r}")
    for name, value in (("quant_min", quant_min), ("quant_max", quant_max)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"{owner}.{name} must be an int or None, got {value!r}")
    if quant_min is not None and quant_max is not None and quant_min > quant_max:
        raise ValueError(f"{owner}: quant_min ({quant_min}) must be <= quant_max ({quant_max})")
    bounds = dtype_range(dtype)
    if bounds is None:
        return
    lo, hi = bounds
    for name, value in (("quant_min", quant_min), ("quant_max", quant_max)):
        if value is not None and not lo <= value <= hi:
            raise ValueError(
                f"{owner}.{name}={value} is outside the range of dtype {dtype} [{lo}, {hi}]"
            )


def _check_qscheme(owner: str, qscheme: Any, ch_axis: int | None) -> None:
    if qscheme is not None and qscheme not in _QSCHEMES:
        raise ValueError(f"{owner}.qscheme must be one of {_QSCHEMES} or None, got {qscheme!r}")
    if ch_axis is not None and (isinstance(ch_axis, bool) or not isinstance(ch_axis, int)):
        raise TypeError(f"{owner}.ch_axis must be an int or None, got {ch_axis!r}")
    if ch_axis is not None and ch_axis < 0:
        raise ValueError(f"{owner}.ch_axis must be >= 0 (counted from the front), got {ch_axis}")
    if qscheme in _PER_CHANNEL and ch_axis is None:
        raise ValueError(f"{owner}: qscheme {qscheme} is per-channel but ch_axis is None")


class QuantizationSpecBase(ABC):  # noqa: B024 - a marker base, like torchao's
    """Base of every spec that says how a tensor (a node's input edge or output) is quantized."""


@dataclass(eq=True, frozen=True)
class QuantizationSpec(QuantizationSpecBase):
    """Quantize with qparams computed by an observer (PTQ) or fake-quantizer (QAT).

    ``observer_or_fake_quant_ctr`` is a class or ``Cls.with_args(...)``; prepare calls it with no
    arguments except the spec's dtype/range/qscheme/ch_axis/is_dynamic, which pt2q passes so the
    observer and the spec cannot disagree.
    """

    dtype: torch.dtype
    observer_or_fake_quant_ctr: ObserverOrFakeQuantizeConstructor
    quant_min: int | None = None
    quant_max: int | None = None
    qscheme: torch.qscheme | None = None
    ch_axis: int | None = None
    is_dynamic: bool = False

    def __post_init__(self) -> None:
        _check_range("QuantizationSpec", self.dtype, self.quant_min, self.quant_max)
        _check_qscheme("QuantizationSpec", self.qscheme, self.ch_axis)
        if not callable(self.observer_or_fake_quant_ctr):
            raise TypeError(
                "QuantizationSpec.observer_or_fake_quant_ctr must be callable (an observer class "
                f"or Cls.with_args(...)), got {self.observer_or_fake_quant_ctr!r}"
            )


@dataclass(eq=True, frozen=True)
class FixedQParamsQuantizationSpec(QuantizationSpecBase):
    """Quantize with a scale and zero point known ahead (e.g. sigmoid's output: 1/256, 0)."""

    dtype: torch.dtype
    scale: float
    zero_point: int
    quant_min: int | None = None
    quant_max: int | None = None
    qscheme: torch.qscheme | None = None
    is_dynamic: bool = False

    def __post_init__(self) -> None:
        owner = "FixedQParamsQuantizationSpec"
        _check_range(owner, self.dtype, self.quant_min, self.quant_max)
        _check_qscheme(owner, self.qscheme, None)
        if self.qscheme in _PER_CHANNEL:
            raise ValueError(f"{owner}.qscheme must be per-tensor, got {self.qscheme}")
        if (
            not isinstance(self.scale, (int, float))
            or not math.isfinite(self.scale)
            or self.scale <= 0
        ):
            raise ValueError(f"{owner}.scale must be a finite float > 0, got {self.scale!r}")
        if isinstance(self.zero_point, bool) or not isinstance(self.zero_point, int):
            raise TypeError(f"{owner}.zero_point must be an int, got {self.zero_point!r}")
        lo = self.quant_min
        hi = self.quant_max
        bounds = dtype_range(self.dtype)
        if bounds is not None:
            lo = bounds[0] if lo is None else lo
            hi = bounds[1] if hi is None else hi
        if lo is not None and hi is not None and not lo <= self.zero_point <= hi:
            raise ValueError(f"{owner}.zero_point={self.zero_point} is outside [{lo}, {hi}]")
        if self.is_dynamic:
            raise ValueError(f"{owner}.is_dynamic=True makes no sense: fixed qparams are static")


def _check_edge_or_node(owner: str, value: Any) -> None:
    if isinstance(value, Node):
        return
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], Node)
        and isinstance(value[1], Node)
    ):
        return
    raise TypeError(
        f"{owner}: expected a Node (an output) or a (producer Node, consumer Node) edge, "
        f"got {value!r}"
    )


@dataclass(eq=True, frozen=True)
class SharedQuantizationSpec(QuantizationSpecBase):
    """Share the observer (hence scale/zero point) of another edge or node output."""

    edge_or_node: EdgeOrNode

    def __post_init__(self) -> None:
        _check_edge_or_node("SharedQuantizationSpec.edge_or_node", self.edge_or_node)


@dataclass(eq=True, frozen=True)
class DerivedQuantizationSpec(QuantizationSpecBase):
    """Qparams computed at convert from other observers, e.g. bias scale = act_scale * w_scale.

    ``derive_qparams_fn`` receives the observers of ``derived_from`` in order and returns
    ``(scale, zero_point)`` tensors (one element per channel when per-channel).
    """

    derived_from: list[EdgeOrNode]
    derive_qparams_fn: Callable[[list[ObserverOrFakeQuantize]], tuple[Tensor, Tensor]]
    dtype: torch.dtype
    quant_min: int | None = None
    quant_max: int | None = None
    qscheme: torch.qscheme | None = None
    ch_axis: int | None = None
    is_dynamic: bool = False

    def __hash__(self) -> int:  # derived_from is a list; identity hashing keeps it usable in sets
        return id(self)

    def __post_init__(self) -> None:
        owner = "DerivedQuantizationSpec"
        _check_range(owner, self.dtype, self.quant_min, self.quant_max)
        _check_qscheme(owner, self.qscheme, self.ch_axis)
        if not isinstance(self.derived_from, (list, tuple)) or not self.derived_from:
            raise ValueError(
                f"{owner}.derived_from must be a non-empty list of edges or nodes, "
                f"got {self.derived_from!r}"
            )
        for i, item in enumerate(self.derived_from):
            _check_edge_or_node(f"{owner}.derived_from[{i}]", item)
        if not callable(self.derive_qparams_fn):
            raise TypeError(
                f"{owner}.derive_qparams_fn must be callable, got {self.derive_qparams_fn!r}"
            )


@dataclass
class QuantizationAnnotation:
    """What a quantizer says about one node: how each input edge and the output are quantized.

    ``input_qspec_map`` maps each input Node (an argument of this node) to a spec, or None to
    leave that edge in float. ``allow_implicit_sharing`` lets prepare reuse the producer's output
    observer for this node's input when both specs are equal. ``_annotated`` marks the node as
    claimed, so later annotators (and ComposableQuantizer members) leave it alone.
    """

    input_qspec_map: dict[Node, QuantizationSpecBase | None] = field(default_factory=dict)
    output_qspec: QuantizationSpecBase | None = None
    allow_implicit_sharing: bool = True
    _annotated: bool = False


@dataclass(eq=True, frozen=True)
class QuantizationConfig:
    """The specs one quantizer applies to an op: activations in/out, weight, bias."""

    input_activation: QuantizationSpec | None
    output_activation: QuantizationSpec | None
    weight: QuantizationSpec | None
    bias: QuantizationSpecBase | None
    is_qat: bool = False

    def __post_init__(self) -> None:
        for name in ("input_activation", "output_activation", "weight", "bias"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, QuantizationSpecBase):
                raise TypeError(
                    f"QuantizationConfig.{name} must be a QuantizationSpec or None, got {value!r}"
                )
        if self.weight is not None and self.weight.is_dynamic:
            raise ValueError("QuantizationConfig.weight cannot be dynamic (is_dynamic=True)")
