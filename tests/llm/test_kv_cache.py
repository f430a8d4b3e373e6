"""KV-cache quantization: the cache buffers become int8 + per-token scale / zero point buffers,
the program keeps mutating them (index_put_ / index_copy_ / copy_ into a slice), reads
dequantize, numerics match a hand per-token quantization, the converted program re-exports with
its buffer mutations, and aliased buffers are refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from kv_models import AliasedCache, CachedAttention, D, H, S
from llm_models import hand_per_token_qparams, qd_counts, sqnr_db
from torch.fx import GraphModule

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.convert.kv_cache import KVCacheError
from pt2q.quantizer import Quantizer
from pt2q.quantizers import ComposableQuantizer, XNNPACKQuantizer, llm_config
from pt2q.quantizers.llm import KVCacheQuantizer

aten = torch.ops.aten


def _convert(model: torch.nn.Module, quantizer: Quantizer, *args: torch.Tensor) -> GraphModule:
    prepared = prepare_pt2e(torch.export.export(model, args).module(), quantizer)
    prepared(*args)
    return convert_pt2e(prepared)


def _hand_cache_values(k: torch.Tensor) -> torch.Tensor:
    """int8 per-token values of k (B, H, T, D) as the converted program stores them (its
    scale and zero point are kept as f32 / i32, and quantize_per_token uses those)."""
    scale, zp = hand_per_token_qparams(k)
    s32 = scale.float()
    return torch.clamp(torch.round(k * (1.0 / s32) + zp), -128, 127).to(torch.int8)


@pytest.mark.parametrize("write", ["index_put_", "copy_"])
def test_cache_stored_int8_and_mutated(write: str) -> None:
    torch.manual_seed(0)
    model = CachedAttention(write).eval()
    reference = CachedAttention(write).eval()
    reference.load_state_dict(model.state_dict())
    x, pos = torch.randn(1, 3, H * D), torch.arange(3)
    converted = _convert(model, KVCacheQuantizer(), x, pos)

    for name in ("k_cache", "v_cache"):
        assert converted.get_buffer(name).dtype == torch.int8
        assert converted.get_buffer(name).shape == (1, H, S, D)
        assert converted.get_buffer(f"{name}_scale").dtype == torch.float32
        assert converted.get_buffer(f"{name}_scale").shape == (1, H, S, 1)
        assert converted.get_buffer(f"{name}_zero_point").dtype == torch.int32
    writes = [n.target for n in converted.graph.nodes if n.target in (aten.index_put_.default, aten.index_copy_.default, aten.copy_.default)]  # fmt: skip
    assert len(writes) == 6  # value, scale, zero point for each of k and v
    assert qd_counts(converted) == {
        "choose_qparams_per_token_asymmetric": 2,
        "quantize_per_token": 2,
        "dequantize_per_token": 2,  # one read of each cache
    }

    x2 = torch.randn(1, 3, H * D)
    for step, (xs, ps) in enumerate(((x, pos), (x2, torch.arange(3, 6)))):
        if write == "copy_" and step == 1:
            break  # the copy_ program is specialised to positions 0..2
        with torch.no_grad():
            expected = reference(xs, ps)
            k = reference.wk(xs).view(1, 3, H, D).transpose(1, 2)
            actual = converted(xs, ps)
        stored = converted.get_buffer("k_cache")[:, :, ps]
        assert torch.equal(stored, _hand_cache_values(k))  # the program wrote int8 values
        assert sqnr_db(expected, actual) >= 35.0  # measured ~42 dB with an int8 cache
    if write == "index_put_":  # the first step's tokens are still there after the second
        with torch.no_grad():
            k0 = reference.wk(x).view(1, 3, H, D).transpose(1, 2)
        assert torch.equal(converted.get_buffer("k_cache")[:, :, :3], _hand_cache_values(k0))


def test_converted_program_reexports_and_still_updates_its_cache() -> None:
    x, pos = torch.randn(1, 3, H * D), torch.arange(3)
    quantizer = ComposableQuantizer(
        [KVCacheQuantizer(), XNNPACKQuantizer().set_global(llm_config("8da4w", group_size=8))]
    )
    converted = _convert(CachedAttention().eval(), quantizer, x, pos)
    again = torch.export.export(converted, (x, pos)).module()
    x2, pos2 = torch.randn(1, 3, H * D), torch.arange(5, 8)
    before = converted.get_buffer("k_cache").clone()
    with torch.no_grad():
        torch.testing.assert_close(again(x2, pos2), converted(x2, pos2))
    for name in ("k_cache", "k_cache_scale", "k_cache_zero_point", "v_cache"):
        mine, theirs = converted.get_buffer(name), again.get_buffer(name)
        assert theirs.dtype == mine.dtype and torch.equal(theirs, mine), name
    after = converted.get_buffer("k_cache")
    assert not torch.equal(after[:, :, 5:8], before[:, :, 5:8])  # written
    assert torch.equal(after[:, :, :5], before[:, :, :5]) and torch.equal(
        after[:, :, 8:], before[:, :, 8:]
    )


def test_buffer_names_filter_and_unknown_name() -> None:
    x, pos = torch.randn(1, 3, H * D), torch.arange(3)
    converted = _convert(CachedAttention().eval(), KVCacheQuantizer(["v_cache"]), x, pos)
    assert converted.get_buffer("v_cache").dtype == torch.int8
    assert converted.get_buffer("k_cache").dtype == torch.float32
    with pytest.raises(ValueError, match=r"buffer_names \['kcache'\] are not buffers"):
        _convert(CachedAttention().eval(), KVCacheQuantizer(["kcache"]), x, pos)


def test_aliased_cache_buffers_are_refused() -> None:
    args = (torch.randn(H, 3, D), torch.arange(3))
    with pytest.raises(KVCacheError, match="'k_cache' shares its storage with 'kv'"):
        _convert(AliasedCache(), KVCacheQuantizer(["k_cache"]), *args)


class _HeadDimWrite(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("k_cache", torch.zeros(1, H, S, D))

    def forward(self, v: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        self.k_cache[:, :, :, idx] = v  # writes along head_dim: no per-token form
        return self.k_cache.sum(-1)


def test_write_along_head_dim_is_a_clear_error() -> None:
    args = (torch.randn(1, H, S, 2), torch.tensor([0, 1]))
    with pytest.raises(KVCacheError, match="indexes the last \\(head\\) dim"):
        _convert(_HeadDimWrite(), KVCacheQuantizer(), *args)


def test_transformers_llama_static_cache_in_subprocess() -> None:
    """transformers' static cache exports its caches as mutated tensor attributes (lifted
    constants, with unused aliased buffers next to them): all four are quantized and decoding
    five tokens stays on the float model (8da8w linears, int8 cache)."""
    child = Path(__file__).with_name("llama_kv_child.py")
    proc = subprocess.run([sys.executable, str(child)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("@@"))
    out = json.loads(line[2:])
    assert out["writes"] == 4 * 3  # (k, v) x 2 layers, each value + scale + zero point
    assert out["dtypes"] == ["torch.float32", "torch.int32", "torch.int8"]
    assert min(out["cosines"]) >= 0.999, out["cosines"]  # measured >= 0.9999
