"""AffineFakeQuantize: fake quantization at any granularity (per tensor, axis, group, row,
token, block), over an affine observer (``pt2q.observer.affine``), plus its defaults.

Forward in training::

    static:   if observer_enabled: observer(x); scale, zero_point <- observer.calculate_qparams()
              if fake_quant_enabled: x <- fake_quantize_affine(x, block_size, scale, zero_point)
    dynamic:  scale, zero_point <- the quantized_decomposed choose-qparams op convert will emit
              (``pt2q.affine.dynamic``) on this very x; x <- fake-quantized x

The gradient is straight-through inside [qmin, qmax] (``pt2q.affine.primitives``). ``convert``
emits the q/dq of the observer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.fx import GraphModule, Node

from pt2q.affine.block_size import get_block_size
from pt2q.affine.dynamic import choose_dynamic_qparams, dynamic_kind
from pt2q.affine.granularity import PerAxis, PerGroup, PerTensor
from pt2q.affine.mapping import MappingType, ZeroPointDomain
from pt2q.affine.primitives import fake_quantize_affine
from pt2q.constants import constant_nodes, evaluate_constant
from pt2q.fake_quantize.base import FakeQuantizeBase
from pt2q.fake_quantize.fake_quantize import FakeQuantize
from pt2q.observer.affine import AffineQuantizedMinMaxObserver, AffineQuantizedObserverBase
from pt2q.observer.partial import PartialWrapper

__all__ = [
    "AffineFakeQuantize",
    "default_affine_fake_quant",
    "default_affine_per_axis_fake_quant",
    "default_groupwise_fake_quant",
]


class AffineFakeQuantize(FakeQuantize):
    """``AffineFakeQuantize(observer=AffineQuantizedMinMaxObserver, is_dynamic=False,
    **observer_kwargs)``: the observer gets ``observer_kwargs`` (mapping_type, target_dtype,
    granularity, ...). A ``FakeQuantize`` for ``isinstance`` checks, as in torchao; ``scale`` /
    ``zero_point`` buffers hold the last qparams in the shape of the blocks."""

    def __init__(
        self,
        observer: Any = AffineQuantizedMinMaxObserver,
        is_dynamic: bool = False,
        **observer_kwargs: Any,
    ) -> None:
        obs = observer(is_dynamic=is_dynamic, **observer_kwargs)
        if not isinstance(obs, AffineQuantizedObserverBase):
            raise TypeError(
                "AffineFakeQuantize: observer must build an AffineQuantizedObserverBase, got "
                f"{type(obs).__name__}"
            )
        FakeQuantizeBase.__init__(self, dtype=obs.dtype, is_dynamic=is_dynamic)
        self.activation_post_process = obs
        self.target_dtype = obs.target_dtype
        self.quant_min: int = obs.quant_min
        self.quant_max: int = obs.quant_max
        self.zero_point_domain = obs.zero_point_domain
        self.mapping_type = obs.mapping_type
        self.granularity = obs.granularity
        self.qscheme = None  # type: ignore[assignment]
        self.is_per_channel = False
        self.ch_axis = -1
        self.block_size: tuple[int, ...] | None = None
        zp_dtype = torch.float32 if self.zero_point_domain == ZeroPointDomain.FLOAT else torch.int32
        self.register_buffer("scale", torch.tensor([1.0]))
        self.register_buffer("zero_point", torch.tensor([0], dtype=zp_dtype))
        if is_dynamic:
            self._dynamic_kind = dynamic_kind(
                obs.granularity, obs.mapping_type, obs.dtype, obs.quant_min, obs.quant_max,
                "AffineFakeQuantize",
            )  # fmt: skip

    def calculate_qparams(self, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.activation_post_process.calculate_qparams()  # type: ignore[return-value]

    def _store(self, scale: torch.Tensor, zero_point: torch.Tensor | None) -> None:
        zp = torch.zeros_like(scale) if zero_point is None else zero_point
        if self.scale.shape != scale.shape:
            self.scale.resize_(scale.shape)
            self.zero_point.resize_(zp.shape)
        self.scale.copy_(scale)
        self.zero_point.copy_(zp)

    def _zero_point_arg(self) -> torch.Tensor | None:
        return None if self.zero_point_domain == ZeroPointDomain.NONE else self.zero_point

    activation_post_process: AffineQuantizedObserverBase

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        obs = self.activation_post_process
        self.block_size = get_block_size(x.shape, self.granularity)
        if self.is_dynamic:
            obs(x.detach())
            scale, zp = choose_dynamic_qparams(
                x.detach(), self._dynamic_kind, self.mapping_type, obs.dtype,
                self.quant_min, self.quant_max, torch.finfo(torch.float32).eps
                if obs.eps is None else obs.eps,
            )  # fmt: skip
            if not self.is_fake_quant_enabled:
                return x
            # The dynamic ops' qparams have one element per token (or one in total).
            return fake_quantize_affine(
                x, self.block_size, scale, zp, obs.target_dtype, self.quant_min, self.quant_max
            )
        if self.is_observer_enabled:
            obs(x.detach())
            static_scale, static_zp = obs.calculate_qparams()
            self._store(static_scale.float(), static_zp)
        if self.is_fake_quant_enabled:
            x = fake_quantize_affine(
                x,
                self.block_size,
                self.scale,
                self._zero_point_arg(),
                obs.target_dtype,
                self.quant_min,
                self.quant_max,
                self.zero_point_domain,
            )
        return x

    def convert(self, model: GraphModule, observer_node: Node) -> None:
        """Emit the observer's q/dq (``pt2q.convert.affine``). A constant input (a trained
        weight) is observed once more first, so its qparams are those of its final value,
        not of the forward before the last optimizer step."""
        x = observer_node.args[0]
        if self.is_observer_enabled and isinstance(x, Node) and x in constant_nodes(model):
            self.activation_post_process(evaluate_constant(model, x, {}).detach())
        self.activation_post_process.convert(model, observer_node)

    def extra_repr(self) -> str:
        return (
            f"fake_quant_enabled={self.is_fake_quant_enabled}, "
            f"observer_enabled={self.is_observer_enabled}, granularity={self.granularity}, "
            f"mapping_type={self.mapping_type}, target_dtype={self.target_dtype}, "
            f"quant_min={self.quant_min}, quant_max={self.quant_max}, "
            f"zero_point_domain={self.zero_point_domain}, block_size={self.block_size}"
        )


# uint8 asymmetric per tensor (activations)
default_affine_fake_quant: PartialWrapper = AffineFakeQuantize.with_args(
    observer=AffineQuantizedMinMaxObserver,
    mapping_type=MappingType.ASYMMETRIC,
    target_dtype=torch.uint8,
    granularity=PerTensor(),
)
# int8 symmetric, groups of 128 along the last dim (weights)
default_groupwise_fake_quant: PartialWrapper = AffineFakeQuantize.with_args(
    observer=AffineQuantizedMinMaxObserver,
    mapping_type=MappingType.SYMMETRIC,
    target_dtype=torch.int8,
    granularity=PerGroup(128),
)
# int8 symmetric per output channel (axis 0, weights)
default_affine_per_axis_fake_quant: PartialWrapper = AffineFakeQuantize.with_args(
    observer=AffineQuantizedMinMaxObserver,
    mapping_type=MappingType.SYMMETRIC,
    target_dtype=torch.int8,
    granularity=PerAxis(0),
)
