"""pt2q's affine primitives, observers and fake-quant against torchao 0.18, computed in a
subprocess (torchao never enters the pytest process). Same inputs, exact equality (values and
the straight-through gradient of the fake-quant)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from pt2q.affine import (
    MappingType,
    PerAxis,
    PerBlock,
    PerGroup,
    PerRow,
    PerTensor,
    PerToken,
    ZeroPointDomain,
    choose_qparams_affine,
    choose_qparams_affine_with_min_max,
    dequantize_affine,
    get_block_size,
    quantize_affine,
)
from pt2q.fake_quantize import (
    default_affine_fake_quant,
    default_affine_per_axis_fake_quant,
    default_groupwise_fake_quant,
)
from pt2q.observer import AffineQuantizedMinMaxObserver

_GRAN = {"tensor": PerTensor, "axis": PerAxis, "group": PerGroup, "row": PerRow,
         "token": PerToken, "block": PerBlock}  # fmt: skip

BLOCK_CASES = [
    ((4, 64), ("tensor",)),
    ((4, 64), ("axis", 0)),
    ((4, 64), ("axis", -1)),
    ((2, 3, 64), ("group", 16)),
    ((2, 3, 64), ("token",)),
    ((4, 64), ("row",)),
    ((4, 6, 8), ("row", 1)),
    ((4, 64), ("block", (2, 32))),
    ((3, 4, 64), ("block", (2, 16))),
]
# (mapping, zero point domain, preserve_zero, qmin, qmax)
QPARAM_CASES = [
    ("SYMMETRIC", "INT", True, -8, 7),
    ("SYMMETRIC", "INT", True, -128, 127),
    ("SYMMETRIC_NO_CLIPPING_ERR", "INT", True, -8, 7),
    ("ASYMMETRIC", "INT", True, 0, 15),
    ("ASYMMETRIC", "NONE", True, -128, 127),
    ("ASYMMETRIC", "FLOAT", False, 0, 15),
]
# (mapping, domain, granularity, qmin, qmax) on a (6, 64) tensor
ROUNDTRIP_CASES = [
    ("SYMMETRIC", "INT", ("group", 32), -8, 7),
    ("ASYMMETRIC", "INT", ("group", 16), 0, 15),
    ("SYMMETRIC", "INT", ("axis", 0), -127, 127),
    ("ASYMMETRIC", "INT", ("tensor",), -128, 127),
    ("ASYMMETRIC", "NONE", ("token",), -128, 127),
    ("ASYMMETRIC", "FLOAT", ("group", 32), 0, 15),
]


@pytest.fixture(scope="module")
def torchao_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("ao")
    torch.manual_seed(0)
    data = {
        "block_cases": BLOCK_CASES,
        "qparam_cases": QPARAM_CASES,
        "roundtrip_cases": ROUNDTRIP_CASES,
        "min_val": -torch.rand(12) * 3,
        "max_val": torch.rand(12) * 2,
        "x": torch.randn(6, 64) * torch.linspace(0.1, 4, 64),
        "batches": [torch.randn(4, 32), torch.randn(4, 32) * 2 + 0.5],
        "w": torch.randn(8, 32),
    }
    torch.save(data, tmp / "in.pt")
    child = Path(__file__).with_name("torchao_affine_child.py")
    proc = subprocess.run(
        [sys.executable, str(child), str(tmp / "in.pt"), str(tmp / "out.pt")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"in": data, "out": torch.load(tmp / "out.pt")}


def _gran(spec: tuple[Any, ...]) -> Any:
    kind, *args = spec
    return _GRAN[kind](*args)


def test_block_sizes(torchao_results: dict[str, Any]) -> None:
    ours = [get_block_size(shape, _gran(gs)) for shape, gs in BLOCK_CASES]
    assert ours == [tuple(b) for b in torchao_results["out"]["block_sizes"]]


def test_qparams_from_min_max(torchao_results: dict[str, Any]) -> None:
    data = torchao_results["in"]
    for case, (ref_s, ref_z) in zip(QPARAM_CASES, torchao_results["out"]["qparams"], strict=True):
        mapping, domain, preserve, qmin, qmax = case
        s, z = choose_qparams_affine_with_min_max(
            data["min_val"], data["max_val"], MappingType[mapping], torch.int8, qmin, qmax,
            None, None, None, preserve, ZeroPointDomain[domain],
        )  # fmt: skip
        assert torch.equal(s, ref_s), case
        assert (z is None and ref_z is None) or torch.equal(z, ref_z), case


def test_quantize_dequantize_roundtrip(torchao_results: dict[str, Any]) -> None:
    x = torchao_results["in"]["x"]
    for case, ref in zip(ROUNDTRIP_CASES, torchao_results["out"]["roundtrip"], strict=True):
        mapping, domain, gs, qmin, qmax = case
        block = get_block_size(x.shape, _gran(gs))
        dom = ZeroPointDomain[domain]
        s, z = choose_qparams_affine(
            x, MappingType[mapping], block, torch.int8, qmin, qmax,
            preserve_zero=domain != "FLOAT", zero_point_domain=dom,
        )  # fmt: skip
        q = quantize_affine(x, block, s, z, torch.int8, qmin, qmax, dom)
        dq = dequantize_affine(q, block, s, z, torch.int8, qmin, qmax, dom)
        ref_s, ref_z, ref_q, ref_dq = ref
        assert torch.equal(s.reshape(ref_s.shape), ref_s), case
        if ref_z is not None:
            assert torch.equal(z.reshape(ref_z.shape), ref_z), case  # type: ignore[union-attr]
        assert torch.equal(q, ref_q), case
        assert torch.equal(dq, ref_dq), case


def test_min_max_observer(torchao_results: dict[str, Any]) -> None:
    obs = AffineQuantizedMinMaxObserver(
        MappingType.ASYMMETRIC, torch.uint8, PerGroup(16), eps=2**-12
    )
    for batch in torchao_results["in"]["batches"]:
        obs(batch)
    s, z = obs.calculate_qparams()
    ref_s, ref_z = torchao_results["out"]["observer"]
    assert torch.equal(s, ref_s) and torch.equal(z, ref_z)


def test_groupwise_fake_quant_forward_equal_gradient_straight_through(
    torchao_results: dict[str, Any],
) -> None:
    fake = default_groupwise_fake_quant.with_args(granularity=PerGroup(16))()
    w = torchao_results["in"]["w"].clone().requires_grad_(True)
    y = fake(w)
    y.sum().backward()
    ref_y, ref_grad = torchao_results["out"]["fake_quant"]
    assert torch.equal(y.detach(), ref_y)
    # Straight-through: 1 inside [qmin, qmax], 0 where clamped (the +max|w| of a group lands on
    # 127.5 -> 128 > 127 in the symmetric int8 range).
    assert w.grad is not None and torch.equal(w.grad, ref_grad)
    assert 0 < int((w.grad == 0).sum()) <= w.numel() // 16


def test_default_fake_quant_settings(torchao_results: dict[str, Any]) -> None:
    ours = {
        "default_affine_fake_quant": default_affine_fake_quant(),
        "default_groupwise_fake_quant": default_groupwise_fake_quant(),
        "default_affine_per_axis_fake_quant": default_affine_per_axis_fake_quant(),
    }
    for name, (mapping, granularity, target) in torchao_results["out"]["defaults"].items():
        obs = ours[name].activation_post_process
        assert (obs.mapping_type.name, obs.target_dtype) == (mapping, target), name
        assert str(obs.granularity) == granularity, name
