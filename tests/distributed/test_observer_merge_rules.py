"""Merge rules per observer class (pt2q/observer/merge_rules.py): N observers fed shards of the
data, merged with merge_observer_state_dicts, against one observer fed all of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from pt2q.fake_quantize import FakeQuantize, FixedQParamsFakeQuantize, FusedMovingAvgObsFakeQuantize
from pt2q.observer import (
    FixedQParamsObserver,
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    ObserverBase,
    PerChannelMinMaxObserver,
    PlaceholderObserver,
)
from pt2q.observer.merge import merge_observer_state_dicts
from pt2q.observer.merge_rules import (
    MergeRule,
    ObserverMergeError,
    merge_min_max,
    register_merge_rule,
)
from pt2q.observer.state_dict import get_observer_state_dict, load_observer_state_dict
from pt2q.tolerances import MERGED_HISTOGRAM_VS_SINGLE_PROCESS_STEPS, assert_within_steps


def _holder(ctr: Callable[[], nn.Module]) -> nn.Module:
    """A module holding one observer under the name prepare gives it."""
    holder = nn.Module()
    holder.activation_post_process_0 = ctr()
    return holder


def _batches(n: int = 9, shape: tuple[int, ...] = (4, 6, 5)) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    # ranges differ per batch, heavy tails: the shards' ranges all differ from the union
    return [torch.randn(shape, generator=gen).pow(3) * (0.5 + i) + i for i in range(n)]


def _split_and_merge(
    ctr: Callable[[], nn.Module], batches: list[torch.Tensor], shards: int
) -> tuple[nn.Module, nn.Module]:
    """(single observer fed everything, fresh observer loaded with the merged shards)."""
    single = _holder(ctr)
    for b in batches:
        single.activation_post_process_0(b)
    states = []
    for r in range(shards):
        part = _holder(ctr)
        for b in batches[r::shards]:
            part.activation_post_process_0(b)
        states.append(get_observer_state_dict(part))
    merged = _holder(ctr)
    load_observer_state_dict(merged, merge_observer_state_dicts(states))
    return single.activation_post_process_0, merged.activation_post_process_0


MIN_MAX = {
    "minmax": MinMaxObserver,
    "per_channel_minmax": PerChannelMinMaxObserver.with_args(ch_axis=1),
    "minmax_symmetric_int8": MinMaxObserver.with_args(
        dtype=torch.int8, qscheme=torch.per_tensor_symmetric
    ),
}


@pytest.mark.parametrize("shards", [1, 2, 3], ids=["1shard", "2shards", "3shards"])
@pytest.mark.parametrize("ctr", MIN_MAX.values(), ids=MIN_MAX.keys())
def test_min_max_family_merges_exactly(ctr: Any, shards: int) -> None:
    single, merged = _split_and_merge(ctr, _batches(), shards)
    assert torch.equal(single.min_val, merged.min_val)
    assert torch.equal(single.max_val, merged.max_val)
    s_scale, s_zp = single.calculate_qparams()
    m_scale, m_zp = merged.calculate_qparams()
    assert torch.equal(s_scale, m_scale) and torch.equal(s_zp, m_zp)


@pytest.mark.parametrize("shards", [2, 3, 5], ids=["2shards", "3shards", "5shards"])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8], ids=["uint8", "int8"])
def test_histogram_merge_within_one_step_of_single_process(shards: int, dtype: torch.dtype) -> None:
    ctr = HistogramObserver.with_args(dtype=dtype)
    single, merged = _split_and_merge(ctr, _batches(10, (64, 64)), shards)
    assert float(merged.min_val) == float(single.min_val)  # the union range is exact
    assert float(merged.max_val) == float(single.max_val)
    # same number of observations, re-binned differently
    assert float(merged.histogram.sum()) == pytest.approx(float(single.histogram.sum()), rel=1e-6)
    s_scale, s_zp = single.calculate_qparams()
    m_scale, m_zp = merged.calculate_qparams()
    qmin, qmax = single.quant_min, single.quant_max
    single_range = torch.stack([(qmin - s_zp) * s_scale, (qmax - s_zp) * s_scale]).double()
    merged_range = torch.stack([(qmin - m_zp) * m_scale, (qmax - m_zp) * m_scale]).double()
    assert_within_steps(
        merged_range,
        single_range,
        s_scale,
        MERGED_HISTOGRAM_VS_SINGLE_PROCESS_STEPS,
        "representable range of merged histogram qparams",
    )


def test_histogram_shards_on_the_union_range_add_exactly() -> None:
    """A shard whose range already is the union is added without re-binning."""
    a, b = _holder(HistogramObserver), _holder(HistogramObserver)
    x = torch.linspace(-3, 5, 1000)
    a.activation_post_process_0(x)
    b.activation_post_process_0(x.flip(0))
    merged = merge_observer_state_dicts([get_observer_state_dict(a), get_observer_state_dict(b)])
    expected = a.activation_post_process_0.histogram * 2
    assert torch.equal(merged["activation_post_process_0.histogram"], expected)


@pytest.mark.parametrize(
    "ctr",
    [MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver.with_args(ch_axis=1)],
    ids=["per_tensor", "per_channel"],
)
def test_moving_average_rule_is_the_mean_of_the_copies(ctr: Any) -> None:
    batches = _batches()
    copies = []
    for r in range(3):
        part = _holder(ctr)
        for b in batches[r::3]:
            part.activation_post_process_0(b)
        copies.append(part.activation_post_process_0)
    merged = merge_observer_state_dicts([get_observer_state_dict(_wrap(c)) for c in copies])
    mean_min = torch.stack([c.min_val for c in copies]).mean(0)
    mean_max = torch.stack([c.max_val for c in copies]).mean(0)
    assert torch.equal(merged["activation_post_process_0.min_val"], mean_min)
    assert torch.equal(merged["activation_post_process_0.max_val"], mean_max)


def _wrap(obs: nn.Module) -> nn.Module:
    holder = nn.Module()
    holder.activation_post_process_0 = obs
    return holder


def test_copies_that_saw_nothing_are_left_out() -> None:
    seen = _holder(PerChannelMinMaxObserver)
    seen.activation_post_process_0(torch.randn(3, 4))
    blank = _holder(PerChannelMinMaxObserver)  # empty per-channel buffers
    merged = merge_observer_state_dicts(
        [get_observer_state_dict(blank), get_observer_state_dict(seen)]
    )
    assert torch.equal(
        merged["activation_post_process_0.min_val"], seen.activation_post_process_0.min_val
    )


def test_fake_quantize_scale_is_recomputed_from_the_merged_observer() -> None:
    ctr = FakeQuantize.with_args(observer=MinMaxObserver)
    single, merged = _split_and_merge(ctr, _batches(), 2)
    assert torch.equal(
        merged.activation_post_process.min_val, single.activation_post_process.min_val
    )
    assert torch.equal(merged.scale, single.scale)
    assert torch.equal(merged.zero_point, single.zero_point)


def test_fused_fake_quantize_per_channel_merges() -> None:
    ctr = FusedMovingAvgObsFakeQuantize.with_args(
        observer=MovingAveragePerChannelMinMaxObserver,
        qscheme=torch.per_channel_symmetric,
        dtype=torch.int8,
        quant_min=-127,
        quant_max=127,
        ch_axis=0,
    )
    _single, merged = _split_and_merge(ctr, _batches(4, (6, 5)), 2)
    scale, zero_point = merged.calculate_qparams()
    assert merged.scale.shape == (6,) and torch.equal(merged.scale, scale)
    assert torch.equal(merged.zero_point, zero_point.to(merged.zero_point.dtype))


@pytest.mark.parametrize(
    "ctr",
    [
        FixedQParamsObserver.with_args(scale=1 / 256, zero_point=0),
        FixedQParamsFakeQuantize.with_args(scale=1 / 128, zero_point=128),
        PlaceholderObserver.with_args(dtype=torch.float16),
    ],
    ids=["fixed_observer", "fixed_fake_quant", "placeholder"],
)
def test_settings_only_observers_merge_to_themselves(ctr: Any) -> None:
    single, merged = _split_and_merge(ctr, _batches(), 2)
    assert (
        get_observer_state_dict(_wrap(single)).keys()
        == get_observer_state_dict(_wrap(merged)).keys()
    )
    for key, value in get_observer_state_dict(_wrap(single)).items():
        assert torch.equal(value, get_observer_state_dict(_wrap(merged))[key])


def test_differing_settings_raise_naming_the_observer() -> None:
    a = _holder(FixedQParamsObserver.with_args(scale=0.5, zero_point=0))
    b = _holder(FixedQParamsObserver.with_args(scale=0.25, zero_point=0))
    with pytest.raises(ObserverMergeError, match=r"activation_post_process_0.*'scale' differs"):
        merge_observer_state_dicts([get_observer_state_dict(a), get_observer_state_dict(b)])


def test_channel_count_mismatch_raises() -> None:
    a, b = _holder(PerChannelMinMaxObserver), _holder(PerChannelMinMaxObserver)
    a.activation_post_process_0(torch.randn(3, 4))
    b.activation_post_process_0(torch.randn(5, 4))
    with pytest.raises(ObserverMergeError, match=r"activation_post_process_0.*different shapes"):
        merge_observer_state_dicts([get_observer_state_dict(a), get_observer_state_dict(b)])


def test_different_observer_sets_raise() -> None:
    a = _holder(MinMaxObserver)
    b = _holder(MinMaxObserver)
    b.activation_post_process_1 = MinMaxObserver()
    with pytest.raises(
        ObserverMergeError, match=r"differently prepared.*activation_post_process_1"
    ):
        merge_observer_state_dicts([get_observer_state_dict(a), get_observer_state_dict(b)])


def test_plain_dict_without_metadata_raises_with_hint() -> None:
    sd = get_observer_state_dict(_holder(MinMaxObserver))
    with pytest.raises(ObserverMergeError, match="_metadata.*torch.save"):
        merge_observer_state_dicts([dict(sd), sd])
    with pytest.raises(ObserverMergeError, match="non-empty list"):
        merge_observer_state_dicts([])


class _CountingObserver(MinMaxObserver):
    """A new observer with new state: the MinMax rule must not apply silently."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.register_buffer("count", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.count += 1
        return super().forward(x)


def _merge_count(states: Any, config: dict[str, Any]) -> dict[str, torch.Tensor]:
    merged = merge_min_max(states, config)
    return {**merged, "count": sum(s["count"] for s in states)}


def test_new_observer_state_needs_its_own_rule() -> None:
    a, b = _holder(_CountingObserver), _holder(_CountingObserver)
    a.activation_post_process_0(torch.ones(2))
    b.activation_post_process_0(-torch.ones(2))
    b.activation_post_process_0(torch.ones(2))
    states = [get_observer_state_dict(a), get_observer_state_dict(b)]
    with pytest.raises(ObserverMergeError, match=r"no merge rule.*register_merge_rule"):
        merge_observer_state_dicts(states)
    register_merge_rule(_CountingObserver, MergeRule(("min_val", "max_val", "count"), _merge_count))
    states = [get_observer_state_dict(a), get_observer_state_dict(b)]
    merged = merge_observer_state_dicts(states)
    assert float(merged["activation_post_process_0.count"]) == 3.0
    assert float(merged["activation_post_process_0.min_val"]) == -1.0


def test_every_builtin_observer_has_a_rule() -> None:
    """Each ObserverBase subclass pt2q ships gets a rule covering exactly its buffers."""
    from pt2q.observer.merge_rules import rule_for

    for ctr in [*MIN_MAX.values(), HistogramObserver, MovingAverageMinMaxObserver]:
        obs = ctr()
        assert isinstance(obs, ObserverBase)
        rule_for(obs, "x")


AFFINE = {
    "affine_minmax_per_group": ("AffineQuantizedMinMaxObserver", "PerGroup", (4,)),
    "affine_minmax_per_axis": ("AffineQuantizedMinMaxObserver", "PerAxis", (0,)),
    "affine_moving_average_per_tensor": (
        "AffineQuantizedMovingAverageMinMaxObserver",
        "PerTensor",
        (),
    ),
}


def _affine_ctr(cls_name: str, granularity: str, args: tuple) -> Callable[[], nn.Module]:
    import pt2q.affine as affine
    import pt2q.observer.affine as obs

    cls = getattr(obs, cls_name)
    return cls.with_args(
        mapping_type=affine.MappingType.ASYMMETRIC,
        target_dtype=torch.int8,
        granularity=getattr(affine, granularity)(*args),
    )


@pytest.mark.parametrize("case", AFFINE.values(), ids=AFFINE.keys())
def test_affine_observers_merge_by_their_rule(case: tuple) -> None:
    ctr = _affine_ctr(*case)
    batches = [b.reshape(10, 12) for b in _batches(6, (4, 6, 5))]
    single, merged = _split_and_merge(ctr, batches, 2)
    if "MovingAverage" in case[0]:
        assert merged.min_val.shape == single.min_val.shape  # rule: mean of the copies
        return
    assert torch.equal(single.min_val, merged.min_val)
    assert torch.equal(single.max_val, merged.max_val)
    for a, b in zip(single.calculate_qparams(), merged.calculate_qparams(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["mse.MSEObserver", "percentile.PercentileObserver"])
def test_histogram_based_observers_use_the_histogram_rule(name: str) -> None:
    """Observers that choose their range from HistogramObserver's histogram merge as it does."""
    import importlib

    from pt2q.observer.merge_rules import class_key, rule_for

    module, cls_name = name.split(".")
    cls = getattr(importlib.import_module(f"pt2q.observer.{module}"), cls_name)
    key, _rule = rule_for(cls(), "x")
    assert key == class_key(HistogramObserver)
    _single, merged = _split_and_merge(cls, _batches(4, (32, 32)), 2)
    assert merged.calculate_qparams()[0] > 0
