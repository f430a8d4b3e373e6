"""pt2q.utils qparam helpers against torchao 0.18's ``pt2e.utils`` (run in a subprocess)."""

from __future__ import annotations

import pytest
import torch
from torchao_peer import register, result

from pt2q.utils import (
    InvalidQuantRangeError,
    calculate_qmin_qmax,
    check_min_max_valid,
    determine_qparams,
    get_qparam_dict,
    is_per_channel,
    is_per_tensor,
    to_underlying_dtype,
    validate_qmin_qmax,
)

# (quant_min, quant_max, has_customized_qrange, dtype name, reduce_range)
QMIN_QMAX_CASES = [
    (0, 255, False, "uint8", False),
    (0, 255, False, "uint8", True),
    (-128, 127, False, "int8", True),
    (-128, 127, False, "int8", False),
    (0, 0, False, "int32", False),
    (0, 0, False, "int16", False),
    (0, 0, False, "uint16", False),
    (-127, 127, True, "int8", False),
    (0, 100, True, "uint8", True),
    (-8, 7, True, "int8", True),
    (0, 0, False, "quint4x2", False),
]

# (min values, max values, qmin, qmax, dtype, customized range, qscheme)
QPARAM_CASES = {
    "affine_u8": ([-1.5], [3.25], 0, 255, "uint8", False, "per_tensor_affine"),
    "affine_u8_scalar": (-0.37, 0.91, 0, 255, "uint8", False, "per_tensor_affine"),
    "affine_positive_only": (0.5, 2.0, 0, 255, "uint8", False, "per_tensor_affine"),
    "affine_i8_half_even": ([-2.0], [0.0], -128, 127, "int8", False, "per_tensor_affine"),
    "symmetric_i8": (-0.7, 1.3, -128, 127, "int8", False, "per_tensor_symmetric"),
    "symmetric_u8": (-0.7, 1.3, 0, 255, "uint8", False, "per_tensor_symmetric"),
    "symmetric_u8_custom": (-0.7, 1.3, 0, 127, "uint8", True, "per_tensor_symmetric"),
    "per_channel_symmetric": (
        [-1.0, -0.1, -3.0],
        [2.0, 0.2, 0.5],
        -127,
        127,
        "int8",
        True,
        "per_channel_symmetric",
    ),
    "per_channel_affine": (
        [-1.0, 0.0, -3.0],
        [2.0, 0.0, 0.5],
        0,
        255,
        "uint8",
        False,
        "per_channel_affine",
    ),
    "all_zero_eps": (0.0, 0.0, 0, 255, "uint8", False, "per_tensor_affine"),
}

_TORCHAO_SNIPPET = """
from torchao.quantization.pt2e import utils as u
QMIN_QMAX_CASES = {qmin_cases!r}
QPARAM_CASES = {qparam_cases!r}
qmin_qmax = [list(u.calculate_qmin_qmax(a, b, c, getattr(torch, d), e)) for a, b, c, d, e in QMIN_QMAX_CASES]
qparams = {{}}
for name, (lo, hi, qmin, qmax, dtype, custom, qscheme) in QPARAM_CASES.items():
    s, z = u.determine_qparams(torch.tensor(lo), torch.tensor(hi), qmin, qmax, getattr(torch, dtype),
                               torch.tensor([torch.finfo(torch.float32).eps]), custom, getattr(torch, qscheme))
    qparams[name] = [tensor_list(s), tensor_list(z), str(s.dtype), str(z.dtype)]
from torchao.quantization.pt2e.observer import MinMaxObserver, PerChannelMinMaxObserver
obs = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
obs(torch.linspace(-2, 3, 50))
d = u.get_qparam_dict(obs)
pc = PerChannelMinMaxObserver(ch_axis=1, dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
pc(torch.linspace(-2, 3, 60).reshape(5, 4, 3))
dc = u.get_qparam_dict(pc)
def plain(d):
    return {{k: (tensor_list(v) if isinstance(v, torch.Tensor) else str(v)) for k, v in d.items()}}
result = {{
    "qmin_qmax": qmin_qmax,
    "qparams": qparams,
    "dict": plain(d),
    "dict_pc": plain(dc),
    "underlying": [str(u.to_underlying_dtype(getattr(torch, n))) for n in ("quint8", "qint8", "qint32", "quint4x2", "int16", "float8_e4m3fn")],
}}
"""


register(
    "utils_parity",
    _TORCHAO_SNIPPET.format(qmin_cases=QMIN_QMAX_CASES, qparam_cases=QPARAM_CASES),
)


@pytest.fixture(scope="module")
def torchao_results() -> dict:
    return result("utils_parity")


def test_calculate_qmin_qmax_matches_torchao(torchao_results: dict) -> None:
    ours = [
        list(calculate_qmin_qmax(a, b, c, getattr(torch, d), e))
        for a, b, c, d, e in QMIN_QMAX_CASES
    ]
    assert ours == torchao_results["qmin_qmax"]


@pytest.mark.parametrize("case", list(QPARAM_CASES))
def test_determine_qparams_matches_torchao(case: str, torchao_results: dict) -> None:
    lo, hi, qmin, qmax, dtype, custom, qscheme = QPARAM_CASES[case]
    eps = torch.tensor([torch.finfo(torch.float32).eps])
    scale, zp = determine_qparams(
        torch.tensor(lo),
        torch.tensor(hi),
        qmin,
        qmax,
        getattr(torch, dtype),
        eps,
        custom,
        getattr(torch, qscheme),
    )
    ao_scale, ao_zp, ao_sdtype, ao_zdtype = torchao_results["qparams"][case]
    # bit-identical: same float64 arithmetic, round half to even
    assert scale.double().tolist() == ao_scale
    assert zp.double().tolist() == ao_zp
    assert (str(scale.dtype), str(zp.dtype)) == (ao_sdtype, ao_zdtype)


def test_float_qparams_keep_float_zero_points() -> None:
    # torchao truncates these to int64; the float zero point is the formula's value
    scale, zp = determine_qparams(
        torch.tensor([-1.0, 0.5]),
        torch.tensor([1.0, 2.0]),
        0,
        255,
        torch.uint8,
        torch.tensor([1e-7]),
        False,
        torch.per_channel_affine_float_qparams,
    )
    assert zp.dtype == torch.float64
    assert zp.tolist() == pytest.approx([127.5, -85.0])
    assert scale.tolist() == pytest.approx([2 / 255, 1.5 / 255])


def test_unobserved_statistics_give_defaults_with_warning() -> None:
    with pytest.warns(UserWarning, match="must run observer"):
        scale, zp = determine_qparams(
            torch.tensor(float("inf")),
            torch.tensor(float("-inf")),
            0,
            255,
            torch.uint8,
            torch.tensor([1e-7]),
            False,
        )
    assert (scale.tolist(), zp.tolist()) == ([1.0], [0])
    with pytest.warns(UserWarning):
        assert not check_min_max_valid(torch.empty(0), torch.empty(0))


def test_bad_ranges_raise_value_and_assertion_errors() -> None:
    with pytest.raises(InvalidQuantRangeError, match="must include 0"):
        validate_qmin_qmax(1, 10)
    with pytest.raises(ValueError, match="quant_min < quant_max"):
        validate_qmin_qmax(0, 0)
    with pytest.raises(AssertionError, match="should be less than max"):
        check_min_max_valid(torch.tensor([2.0]), torch.tensor([1.0]))
    with pytest.raises(AssertionError, match="at most 256"):
        calculate_qmin_qmax(-200, 200, True, torch.int8, False)


def test_get_qparam_dict_matches_torchao(torchao_results: dict) -> None:
    from pt2q.observer import MinMaxObserver, PerChannelMinMaxObserver

    obs = MinMaxObserver(dtype=torch.int8, qscheme=torch.per_tensor_symmetric)
    obs(torch.linspace(-2, 3, 50))
    pc = PerChannelMinMaxObserver(ch_axis=1, dtype=torch.int8, qscheme=torch.per_channel_symmetric)
    pc(torch.linspace(-2, 3, 60).reshape(5, 4, 3))
    for ours, theirs in (
        (get_qparam_dict(obs), torchao_results["dict"]),
        (get_qparam_dict(pc), torchao_results["dict_pc"]),
    ):
        assert sorted(ours) == sorted(theirs)
        assert str(ours["qscheme"]) == theirs["qscheme"]
        assert ours["scale"].reshape(-1).double().tolist() == pytest.approx(theirs["scale"])
        assert ours["zero_point"].reshape(-1).double().tolist() == theirs["zero_point"]
        assert (ours["quant_min"], ours["quant_max"]) == (
            int(theirs["quant_min"]),
            int(theirs["quant_max"]),
        )
    assert get_qparam_dict(pc)["axis"] == 1


def test_dtype_and_qscheme_predicates(torchao_results: dict) -> None:
    names = ("quint8", "qint8", "qint32", "quint4x2", "int16", "float8_e4m3fn")
    assert [str(to_underlying_dtype(getattr(torch, n))) for n in names] == torchao_results[
        "underlying"
    ]
    assert is_per_tensor(torch.per_tensor_symmetric) and not is_per_tensor(None)
    assert is_per_channel(torch.per_channel_affine_float_qparams)
    assert not is_per_channel(torch.per_tensor_affine)
    with pytest.raises(ValueError, match="unsupported dtype"):
        to_underlying_dtype(torch.float32)
