"""get_observer_state_dict / load_observer_state_dict (torchao names): statistics of a calibrated
model loaded into a freshly prepared one give the identical converted program, also when the
fresh model lives in another process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from pt2q import convert_pt2e, prepare_pt2e, prepare_qat_pt2e
from pt2q.observer import get_observer_state_dict, load_observer_state_dict
from pt2q.observer.state_dict import ObserverStateDictError
from pt2q.quantizers import (
    X86InductorQuantizer,
    XNNPACKQuantizer,
    get_default_x86_inductor_quantization_config,
    get_symmetric_quantization_config,
)

REPO = Path(__file__).resolve().parents[2]


def _model() -> torch.fx.GraphModule:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 6 * 6, 10),
    ).eval()
    return torch.export.export(model, (torch.randn(2, 3, 8, 8),)).module()


def _batches() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return [torch.randn(2, 3, 8, 8, generator=gen) * (1 + i) for i in range(4)]


QUANTIZERS = {
    "xnnpack_per_channel": lambda: XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True)
    ),
    "x86": lambda: X86InductorQuantizer().set_global(
        get_default_x86_inductor_quantization_config()
    ),
}


def _program(gm: torch.fx.GraphModule) -> tuple[str, dict[str, torch.Tensor]]:
    """Converted code (per-tensor qparams are literals in it) and every buffer."""
    return gm.code, {k: v.clone() for k, v in gm.state_dict().items()}


def _assert_same_program(a: torch.fx.GraphModule, b: torch.fx.GraphModule) -> None:
    code_a, bufs_a = _program(a)
    code_b, bufs_b = _program(b)
    assert code_a == code_b
    assert bufs_a.keys() == bufs_b.keys()
    for key in bufs_a:
        assert torch.equal(bufs_a[key], bufs_b[key]), key


@pytest.mark.parametrize("make", QUANTIZERS.values(), ids=QUANTIZERS.keys())
def test_loaded_statistics_convert_identically(make: object) -> None:
    gm = _model()
    calibrated = prepare_pt2e(gm, make())  # type: ignore[operator]
    for batch in _batches():
        calibrated(batch)
    state = get_observer_state_dict(calibrated)
    assert state and all("activation_post_process" in key for key in state)
    fresh = prepare_pt2e(gm, make())  # type: ignore[operator]
    load_observer_state_dict(fresh, state)
    _assert_same_program(convert_pt2e(calibrated), convert_pt2e(fresh))


def test_qat_fake_quant_statistics_and_qparams_load() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    gm = torch.export.export(model.train(), (torch.randn(5, 6),)).module()
    quantizer = XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_qat=True)
    )
    trained = prepare_qat_pt2e(gm, quantizer)
    for i in range(3):
        trained(torch.randn(5, 6) * (i + 1))
    fresh = prepare_qat_pt2e(gm, quantizer)
    fresh.load_state_dict(trained.state_dict(), strict=False)  # the trained weights
    load_observer_state_dict(fresh, get_observer_state_dict(trained))
    for (name, a), (_, b) in zip(
        get_observer_state_dict(trained).items(),
        get_observer_state_dict(fresh).items(),
        strict=True,
    ):
        assert torch.equal(a, b), name
    _assert_same_program(convert_pt2e(trained), convert_pt2e(fresh))


def test_load_in_another_process(tmp_path: Path) -> None:
    gm = _model()
    make = QUANTIZERS["x86"]
    calibrated = prepare_pt2e(gm, make())
    for batch in _batches():
        calibrated(batch)
    torch.save(get_observer_state_dict(calibrated), tmp_path / "stats.pt")
    torch.export.save(
        torch.export.export(_eager_model(), (torch.randn(2, 3, 8, 8),)), tmp_path / "m.pt2"
    )
    expected = convert_pt2e(calibrated)
    script = textwrap.dedent(
        f"""
        import torch
        from pt2q import convert_pt2e, prepare_pt2e
        from pt2q.observer import load_observer_state_dict
        from pt2q.quantizers import X86InductorQuantizer, get_default_x86_inductor_quantization_config
        gm = torch.export.load({str(tmp_path / "m.pt2")!r}).module()
        quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config())
        prepared = prepare_pt2e(gm, quantizer)
        load_observer_state_dict(prepared, torch.load({str(tmp_path / "stats.pt")!r}))
        converted = convert_pt2e(prepared)
        torch.save({{"code": converted.code, "state": converted.state_dict()}}, {str(tmp_path / "out.pt")!r})
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=180, cwd=REPO)
    out = torch.load(tmp_path / "out.pt")
    code, bufs = _program(expected)
    assert out["code"] == code
    for key, value in bufs.items():
        assert torch.equal(out["state"][key], value), key


def _eager_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 6 * 6, 10),
    ).eval()


def test_state_from_another_quantizer_is_refused_before_loading() -> None:
    gm = _model()
    x86 = prepare_pt2e(gm, QUANTIZERS["x86"]())
    x86(_batches()[0])
    xnn = prepare_pt2e(gm, QUANTIZERS["xnnpack_per_channel"]())
    before = get_observer_state_dict(xnn)
    with pytest.raises(ObserverStateDictError, match="prepared from the same exported program"):
        load_observer_state_dict(xnn, get_observer_state_dict(x86))
    after = get_observer_state_dict(xnn)
    assert all(
        torch.equal(
            before[k],
            after[k],
        )
        for k in before
    )  # nothing written


def test_missing_and_unexpected_keys_are_named() -> None:
    gm = _model()
    prepared = prepare_pt2e(gm, QUANTIZERS["xnnpack_per_channel"]())
    prepared(_batches()[0])
    state = get_observer_state_dict(prepared)
    removed = next(iter(state))
    del state[removed]
    state["activation_post_process_99.min_val"] = torch.tensor(0.0)
    with pytest.raises(ObserverStateDictError) as info:
        load_observer_state_dict(prepare_pt2e(gm, QUANTIZERS["xnnpack_per_channel"]()), state)
    assert f"missing keys {removed}" in str(info.value)
    assert "unexpected keys activation_post_process_99.min_val" in str(info.value)
    assert isinstance(info.value, RuntimeError)


def test_histogram_bin_count_mismatch_raises() -> None:
    from pt2q.observer import HistogramObserver

    a, b = torch.nn.Module(), torch.nn.Module()
    a.activation_post_process_0 = HistogramObserver(bins=64)
    b.activation_post_process_0 = HistogramObserver(bins=128)
    a.activation_post_process_0(torch.randn(10))
    with pytest.raises(
        ObserverStateDictError, match="size mismatch for activation_post_process_0.histogram"
    ):
        load_observer_state_dict(b, get_observer_state_dict(a))
