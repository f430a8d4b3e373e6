"""One observer (PTQ) or fake-quantizer (QAT) per sharing group, built from the group's spec."""

from __future__ import annotations

from typing import Any

import torch

from pt2q.observer import DerivedQParamsObserver, FixedQParamsObserver
from pt2q.prepare.groups import SharingPlan, describe_key, key_label
from pt2q.quantizer.specs import (
    DerivedQuantizationSpec,
    EdgeOrNode,
    FixedQParamsQuantizationSpec,
    QuantizationSpec,
    QuantizationSpecBase,
)

__all__ = ["create_observers"]

_PER_CHANNEL = (
    torch.per_channel_affine,
    torch.per_channel_symmetric,
    torch.per_channel_affine_float_qparams,
)


def _from_qspec(spec: QuantizationSpec) -> torch.nn.Module:
    # The spec's fields override whatever the constructor's with_args carried, so the observer
    # and the spec cannot disagree (as in torchao).
    kwargs: dict[str, Any] = {
        "dtype": spec.dtype,
        "quant_min": spec.quant_min,
        "quant_max": spec.quant_max,
        "qscheme": spec.qscheme,
        "is_dynamic": spec.is_dynamic,
    }
    if spec.qscheme in _PER_CHANNEL:
        kwargs["ch_axis"] = spec.ch_axis
    return spec.observer_or_fake_quant_ctr(**kwargs)


def _from_fixed(spec: FixedQParamsQuantizationSpec, is_qat: bool) -> torch.nn.Module:
    observer_ctr = FixedQParamsObserver.with_args(
        scale=spec.scale,
        zero_point=spec.zero_point,
        dtype=spec.dtype,
        qscheme=spec.qscheme,
        quant_min=spec.quant_min,
        quant_max=spec.quant_max,
    )
    if is_qat:
        from pt2q.fake_quantize import FixedQParamsFakeQuantize

        return FixedQParamsFakeQuantize(observer=observer_ctr)
    return observer_ctr()


def create_observers(plan: SharingPlan, is_qat: bool) -> dict[EdgeOrNode, torch.nn.Module]:
    """Map every annotated key to its group's observer (one instance per group)."""
    by_root: dict[EdgeOrNode, torch.nn.Module] = {}
    derived: list[tuple[EdgeOrNode, DerivedQuantizationSpec]] = []
    for root, spec in plan.concrete.items():
        if isinstance(spec, QuantizationSpec):
            by_root[root] = _from_qspec(spec)
        elif isinstance(spec, FixedQParamsQuantizationSpec):
            by_root[root] = _from_fixed(spec, is_qat)
        elif isinstance(spec, DerivedQuantizationSpec):
            derived.append((root, spec))
        else:
            raise TypeError(f"{describe_key(root)}: unsupported spec {_name(spec)}")
    for root, spec in derived:
        sources = []
        for src in spec.derived_from:
            if src not in plan.spec_of:
                raise ValueError(
                    f"{describe_key(root)}: DerivedQuantizationSpec derives from "
                    f"{describe_key(src)}, which has no quantization spec"
                )
            src_obs = by_root.get(plan.find(src))
            if src_obs is None:
                raise ValueError(
                    f"{describe_key(root)}: DerivedQuantizationSpec derives from "
                    f"{describe_key(src)}, which is itself derived (chains are not supported)"
                )
            sources.append(src_obs)
        by_root[root] = DerivedQParamsObserver(
            obs_or_fqs=sources,
            derive_qparams_fn=spec.derive_qparams_fn,
            dtype=spec.dtype,
            quant_min=spec.quant_min,
            quant_max=spec.quant_max,
            qscheme=spec.qscheme,
            ch_axis=spec.ch_axis,
        )
    for root, obs in by_root.items():
        setattr(obs, "node_name", key_label(root))  # noqa: B010  (a plain attribute, not a tensor)
    return {key: by_root[plan.find(key)] for key in plan.spec_of}


def _name(spec: QuantizationSpecBase) -> str:
    return type(spec).__name__
