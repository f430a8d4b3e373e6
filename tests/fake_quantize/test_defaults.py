"""The ready-made constructors: settings as torchao's, each builds and runs."""

from __future__ import annotations

import pytest
import torch
from torchao_peer import register, result

import pt2q.fake_quantize as fq

# The affine defaults (granularity-based, no qscheme) are tested in tests/affine.
NAMES = [
    n for n in fq.__all__ if n.startswith(("default_", "fused_")) and n not in fq.affine.__all__
]

# name -> (class, quant_min, quant_max, dtype, qscheme)
EXPECTED = {
    "default_fake_quant": ("FakeQuantize", 0, 127, torch.uint8, torch.per_tensor_affine),
    "default_weight_fake_quant": (
        "FakeQuantize",
        -128,
        127,
        torch.int8,
        torch.per_tensor_symmetric,
    ),
    "default_fused_per_channel_wt_fake_quant": (
        "FusedMovingAvgObsFakeQuantize",
        -128,
        127,
        torch.int8,
        torch.per_channel_symmetric,
    ),
    "default_fixed_qparams_range_neg1to1_fake_quant": (
        "FixedQParamsFakeQuantize",
        0,
        255,
        torch.uint8,
        torch.per_tensor_affine,
    ),
}


@pytest.mark.parametrize("name", NAMES)
def test_builds_and_fake_quantizes(name: str) -> None:
    torch.manual_seed(0)
    module = getattr(fq, name)()
    x = torch.rand(4, 6) * 0.99  # inside every default's range, fixed ones included
    y = module(x)
    # rounding to the nearest level: at most half a step (per channel where per channel)
    scale = module.scale.view(-1, 1) if module.scale.numel() > 1 else module.scale
    assert bool(((y - x).abs() <= scale / 2 + 1e-6).all())


@pytest.mark.parametrize("name", list(EXPECTED))
def test_settings(name: str) -> None:
    module = getattr(fq, name)()
    cls, qmin, qmax, dtype, qscheme = EXPECTED[name]
    assert (type(module).__name__, module.quant_min, module.quant_max, module.dtype) == (
        cls,
        qmin,
        qmax,
        dtype,
    )
    assert module.qscheme == qscheme


_TORCHAO_SETTINGS = """
import torchao.quantization.pt2e.fake_quantize as ao
result = {}
for name in NAMES:
    ref = getattr(ao, name)()
    obs = ref.activation_post_process
    result[name] = [obs.quant_min, obs.quant_max, str(ref.qscheme), type(ref).__name__,
                    getattr(ref, "is_dynamic", False)]
"""


# torchao registers global Inductor passes on import: its settings are read in a subprocess
register("fake_quantize_defaults", f"NAMES = {NAMES!r}\n{_TORCHAO_SETTINGS}")


@pytest.fixture(scope="module")
def torchao_settings() -> dict[str, list[object]]:
    return result("fake_quantize_defaults")


@pytest.mark.parametrize("name", NAMES)
def test_same_settings_as_torchao(name: str, torchao_settings: dict[str, list[object]]) -> None:
    ours = getattr(fq, name)()
    qmin, qmax, qscheme, cls, is_dynamic = torchao_settings[name]
    assert (ours.quant_min, ours.quant_max) == (qmin, qmax)
    assert str(ours.qscheme) == qscheme
    assert type(ours).__name__ == cls
    assert ours.is_dynamic == is_dynamic
