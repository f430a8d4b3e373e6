"""Metric registry: values, the inf/nan policy, streaming equals one shot."""

from __future__ import annotations

import math

import pytest
import torch

from pt2q.debugger.metrics import METRICS, compute_metric, get_metric


def test_sqnr_value_float_is_signal() -> None:
    ref = torch.tensor([3.0, 4.0])  # signal energy 25
    act = torch.tensor([3.0, 3.0])  # noise energy 1
    assert compute_metric("sqnr", ref, act) == pytest.approx(10 * math.log10(25.0))
    # swapping the roles changes the value: the reference is the signal
    assert compute_metric("sqnr", act, ref) == pytest.approx(10 * math.log10(18.0))


@pytest.mark.parametrize(
    ("ref", "act", "expected"),
    [
        pytest.param([1.0, 2.0], [1.0, 2.0], math.inf, id="identical"),
        pytest.param([0.0, 0.0], [0.0, 0.0], math.inf, id="both-zero"),
        pytest.param([0.0, 0.0], [1.0, 0.0], -math.inf, id="zero-signal"),
    ],
)
def test_sqnr_inf_policy(ref: list[float], act: list[float], expected: float) -> None:
    assert compute_metric("sqnr", torch.tensor(ref), torch.tensor(act)) == expected


@pytest.mark.parametrize("name", sorted(METRICS))
def test_non_finite_gives_nan(name: str) -> None:
    ref = torch.tensor([1.0, float("nan")])
    assert math.isnan(compute_metric(name, ref, torch.ones(2)))
    assert math.isnan(compute_metric(name, torch.ones(2), torch.tensor([1.0, float("inf")])))


@pytest.mark.parametrize("name", sorted(METRICS))
def test_streaming_equals_concatenated(name: str) -> None:
    gen = torch.Generator().manual_seed(0)
    refs = [torch.randn(5, 7, generator=gen) for _ in range(4)]
    acts = [r + 0.1 * torch.randn(5, 7, generator=gen) for r in refs]
    metric = get_metric(name)
    state = metric.init()
    for r, a in zip(refs, acts, strict=True):
        metric.update(state, r, a)
    assert len(state) == len(metric.sums) + 2  # constant memory: a few sums
    one_shot = compute_metric(name, torch.cat(refs), torch.cat(acts))
    assert metric.finalize(state) == pytest.approx(one_shot, rel=1e-9)


def test_mse_max_abs_cosine_values() -> None:
    ref, act = torch.tensor([1.0, -2.0, 0.0]), torch.tensor([1.5, -2.0, -1.0])
    assert compute_metric("mse", ref, act) == pytest.approx((0.25 + 1.0) / 3)
    assert compute_metric("max_abs", ref, act) == pytest.approx(1.0)
    cos = (1.5 + 4.0) / (math.sqrt(5.0) * math.sqrt(1.5**2 + 4.0 + 1.0))
    assert compute_metric("cosine", ref, act) == pytest.approx(cos)
    assert compute_metric("cosine", torch.zeros(2), torch.zeros(2)) == 1.0
    assert compute_metric("cosine", torch.zeros(2), torch.ones(2)) == 0.0


def test_errors_name_metric_and_shapes() -> None:
    with pytest.raises(KeyError, match=r"unknown metric 'snr'; registered: \['cosine'"):
        get_metric("snr")
    with pytest.raises(
        ValueError, match=r"metric sqnr: reference shape \(2,\) != actual shape \(3,\)"
    ):
        compute_metric("sqnr", torch.ones(2), torch.ones(3))
    empty = get_metric("sqnr")
    assert math.isnan(empty.finalize(empty.init()))  # no elements: cannot judge
