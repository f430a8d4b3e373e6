"""Specs are frozen and reject bad values with messages that name the field and the value."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pt2q.observer import ObserverBase, PartialWrapper, calculate_qparams, default_quant_range
from pt2q.quantizer import (
    DerivedQuantizationSpec,
    FixedQParamsQuantizationSpec,
    QuantizationConfig,
    QuantizationSpec,
    SharedQuantizationSpec,
)


class _Obs(ObserverBase):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def calculate_qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor(1.0), torch.tensor(0)


def _node() -> torch.fx.Node:
    graph = torch.fx.Graph()
    return graph.placeholder("x")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        pytest.param(
            {"dtype": torch.int8, "quant_min": 5, "quant_max": 1},
            ValueError,
            r"quant_min \(5\) must be <= quant_max \(1\)",
            id="qmin-above-qmax",
        ),
        pytest.param(
            {"dtype": torch.int8, "quant_min": -200, "quant_max": 127},
            ValueError,
            r"quant_min=-200 is outside the range of dtype torch.int8 \[-128, 127\]",
            id="qmin-outside-dtype",
        ),
        pytest.param(
            {"dtype": torch.uint8, "quant_min": 0, "quant_max": 256},
            ValueError,
            r"quant_max=256 is outside the range of dtype torch.uint8 \[0, 255\]",
            id="qmax-outside-dtype",
        ),
        pytest.param(
            {"dtype": torch.int8, "qscheme": torch.per_channel_symmetric},
            ValueError,
            r"per-channel but ch_axis is None",
            id="per-channel-without-axis",
        ),
        pytest.param(
            {"dtype": torch.int8, "qscheme": torch.per_channel_symmetric, "ch_axis": -1},
            ValueError,
            r"ch_axis must be >= 0 .* got -1",
            id="negative-axis",
        ),
        pytest.param(
            {"dtype": "int8"}, TypeError, r"dtype must be a torch.dtype, got 'int8'", id="dtype-str"
        ),
        pytest.param(
            {"dtype": torch.int8, "qscheme": "per_tensor"},
            ValueError,
            r"qscheme must be one of .* got 'per_tensor'",
            id="qscheme-str",
        ),
    ],
)
def test_quantization_spec_rejects(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        QuantizationSpec(observer_or_fake_quant_ctr=_Obs, **kwargs)


def test_quantization_spec_rejects_non_callable_constructor() -> None:
    with pytest.raises(TypeError, match=r"observer_or_fake_quant_ctr must be callable.*got 3"):
        QuantizationSpec(dtype=torch.int8, observer_or_fake_quant_ctr=3)  # type: ignore[arg-type]


def test_quantization_spec_is_frozen_and_hashable() -> None:
    spec = QuantizationSpec(
        dtype=torch.uint8, observer_or_fake_quant_ctr=_Obs, quant_min=0, quant_max=255
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.quant_min = 1  # type: ignore[misc]
    same = QuantizationSpec(
        dtype=torch.uint8, observer_or_fake_quant_ctr=_Obs, quant_min=0, quant_max=255
    )
    assert spec == same and hash(spec) == hash(same)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param(
            {"scale": 0.0, "zero_point": 0},
            r"scale must be a finite float > 0, got 0.0",
            id="zero-scale",
        ),
        pytest.param(
            {"scale": float("nan"), "zero_point": 0},
            r"scale must be a finite float > 0, got nan",
            id="nan-scale",
        ),
        pytest.param(
            {"scale": 0.1, "zero_point": 300},
            r"zero_point=300 is outside \[0, 255\]",
            id="zp-range",
        ),
    ],
)
def test_fixed_qparams_spec_rejects(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FixedQParamsQuantizationSpec(dtype=torch.uint8, **kwargs)


def test_shared_spec_requires_node_or_edge() -> None:
    node = _node()
    assert SharedQuantizationSpec(node).edge_or_node is node
    assert SharedQuantizationSpec((node, node)).edge_or_node == (node, node)
    with pytest.raises(TypeError, match=r"expected a Node .* got 'x'"):
        SharedQuantizationSpec("x")  # type: ignore[arg-type]


def test_derived_spec_rejects_empty_sources() -> None:
    with pytest.raises(ValueError, match=r"derived_from must be a non-empty list"):
        DerivedQuantizationSpec(
            derived_from=[], derive_qparams_fn=lambda obs: obs, dtype=torch.int32
        )


def test_config_rejects_dynamic_weight_and_non_spec() -> None:
    dyn = QuantizationSpec(dtype=torch.int8, observer_or_fake_quant_ctr=_Obs, is_dynamic=True)
    with pytest.raises(ValueError, match=r"weight cannot be dynamic"):
        QuantizationConfig(None, None, dyn, None)
    with pytest.raises(
        TypeError, match=r"QuantizationConfig.bias must be a QuantizationSpec or None, got 1"
    ):
        QuantizationConfig(None, None, None, 1)  # type: ignore[arg-type]


def test_with_args_chains_and_later_values_win() -> None:
    ctor = _Obs.with_args(dtype=torch.int8).with_args(dtype=torch.uint8, is_dynamic=True)
    assert isinstance(ctor, PartialWrapper) and ctor.target is _Obs
    obs = ctor()
    assert obs.dtype == torch.uint8 and obs.is_dynamic


@pytest.mark.parametrize(
    ("dtype", "reduce_range", "expected"),
    [
        pytest.param(torch.uint8, False, (0, 255), id="uint8"),
        pytest.param(torch.uint8, True, (0, 127), id="uint8-reduced"),
        pytest.param(torch.int8, True, (-64, 63), id="int8-reduced"),
    ],
)
def test_default_quant_range(
    dtype: torch.dtype, reduce_range: bool, expected: tuple[int, int]
) -> None:
    assert default_quant_range(dtype, None, None, reduce_range) == expected


def test_qparam_formulas_by_hand() -> None:
    lo, hi = torch.tensor(-1.0), torch.tensor(2.0)
    # affine uint8: scale = 3 / 255, zero_point = 0 - round(-1 / scale) = 85
    scale, zp = calculate_qparams(lo, hi, 0, 255, torch.uint8, torch.per_tensor_affine)
    assert scale.item() == pytest.approx(3.0 / 255.0) and zp.item() == 85
    # symmetric uint8: scale = 2 / 127.5, zero_point = 128
    scale, zp = calculate_qparams(lo, hi, 0, 255, torch.uint8, torch.per_tensor_symmetric)
    assert scale.item() == pytest.approx(2.0 / 127.5) and zp.item() == 128
    # symmetric int8 per channel: scale = max|x| / 127, zero_point = 0
    scale, zp = calculate_qparams(
        torch.tensor([-1.0, -3.0]),
        torch.tensor([2.0, 1.0]),
        -127,
        127,
        torch.int8,
        torch.per_channel_symmetric,
    )
    torch.testing.assert_close(scale, torch.tensor([2.0 / 127, 3.0 / 127]))
    assert zp.tolist() == [0, 0]
    # all-zero data: the eps floor keeps the scale positive
    scale, _ = calculate_qparams(
        torch.tensor(0.0), torch.tensor(0.0), 0, 255, torch.uint8, torch.per_tensor_affine
    )
    assert scale.item() == torch.finfo(torch.float32).eps
