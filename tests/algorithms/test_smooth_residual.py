"""SmoothQuant on a post-LN BERT (the residual add reads each LayerNorm too): the linears read a
smoothed copy of the LayerNorm, so both quantizers observe the smoothed range (the inserted
``mul`` it replaces was quantized by XNNPACKQuantizer before dividing); x86 output SQNR improves.
Under XNNPACK the int8 linear outputs dominate this model's error and smoothing does not pay:
``quantize(..., "auto")`` judges it there."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from pt2q.algorithms import quantize, smooth
from pt2q.algorithms.batches import output_sqnr
from pt2q.convert.qdq import observer_of
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizers import (
    X86InductorQuantizer,
    XNNPACKQuantizer,
    get_default_x86_inductor_quantization_config,
    get_symmetric_quantization_config,
)

QUANTIZERS = {
    "x86": lambda: X86InductorQuantizer().set_global(
        get_default_x86_inductor_quantization_config()
    ),
    # torchao's static linears: their int8 inputs over the layer_norm ranges are what smoothing
    # helps (by default the linears here would be per-token dynamic, float_read_linears.py)
    "xnnpack": lambda: (
        XNNPACKQuantizer()
        .set_global(get_symmetric_quantization_config(is_per_channel=True))
        .set_float_read_linear_dynamic(False)
    ),
}


def _tiny_bert() -> tuple[torch.nn.Module, list[dict[str, torch.Tensor]]]:
    """2-layer BERT (hidden 32) whose LayerNorms scale two channels 40x (the outlier channels
    trained BERTs feed their q/k/v and FFN linears)."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=32,
        attn_implementation="eager",
    )
    model = transformers.BertModel(config, add_pooling_layer=False).eval()
    with torch.no_grad():
        for layer in model.encoder.layer:
            layer.attention.output.LayerNorm.weight[:2] = 40.0
            layer.output.LayerNorm.weight[:2] = 40.0
    g = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(4):
        ids = torch.randint(0, 100, (2, 16), generator=g)
        batches.append({"input_ids": ids, "attention_mask": torch.ones(2, 16, dtype=torch.int64)})
    return model, batches


def _sqnr(model: torch.nn.Module, gm: torch.fx.GraphModule, batches: list, name: str) -> float:
    prepared = prepare_pt2e(gm, QUANTIZERS[name]())
    for b in batches[:-1]:
        prepared(**b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = convert_pt2e(prepared)
    with torch.no_grad():
        return output_sqnr([model(**batches[-1])], [converted(**batches[-1])])


def _observed_ranges(prepared: torch.fx.GraphModule) -> dict[str, float]:
    """Activation observer of each layer_norm output read by linears -> its max |value|."""
    ranges = {}
    for node in prepared.graph.nodes:
        obs = observer_of(prepared, node)
        src = node.args[0] if obs is not None else None
        if isinstance(src, torch.fx.Node) and src.target == torch.ops.aten.layer_norm.default:
            ranges[src.name] = max(-float(obs.min_val), float(obs.max_val))
    return ranges


def test_smoothing_layer_norm_copies_improves_x86_output_sqnr() -> None:
    model, batches = _tiny_bert()
    gm = torch.export.export(model, (), kwargs=batches[0]).module()
    plain = _sqnr(model, copy.deepcopy(gm), batches, "x86")
    groups = smooth(gm, batches[:-1])
    # the three outlier LayerNorms read by linears (layer 1's last one only feeds the output;
    # the embeddings' one has no outliers and is left alone), each also read by a residual add
    assert {g.placed for g in groups} == {"layer_norm copy"}
    assert len(groups) == 3
    smoothed = _sqnr(model, gm, batches, "x86")
    print(f"x86: output SQNR plain {plain:.1f} dB, smoothed {smoothed:.1f} dB")  # 74.5 -> 78.9
    assert smoothed >= plain + 3.0


def test_xnnpack_observes_the_smoothed_layer_norm_copies() -> None:
    model, batches = _tiny_bert()
    gm = torch.export.export(model, (), kwargs=batches[0]).module()
    plain = _observed_ranges(_calibrated(copy.deepcopy(gm), batches))
    smooth(gm, batches[:-1])
    smoothed = _observed_ranges(_calibrated(gm, batches))
    # linears read the copies (layer_norm_default*), int8 over a range 40-100x narrower (an
    # inserted mul would have been quantized at its input, over the unsmoothed range)
    assert sorted(smoothed) == ["layer_norm", *(f"layer_norm_default{s}" for s in ("", "_1", "_2"))]
    for orig, dup in zip(
        ("layer_norm_1", "layer_norm_2", "layer_norm_3"), sorted(smoothed)[1:], strict=True
    ):
        assert smoothed[dup] * 20 < plain[orig]


def _calibrated(gm: torch.fx.GraphModule, batches: list) -> torch.fx.GraphModule:
    prepared = prepare_pt2e(gm, QUANTIZERS["xnnpack"]())
    for b in batches[:-1]:
        prepared(**b)
    return prepared


def test_quantize_auto_keeps_smooth_that_pays_only_after_keep_float() -> None:
    """XNNPACK: the FFN outputs' 60x outlier channel (int8 linear outputs) masks what smoothing
    gains; auto judges smooth again with keep_float applied to both sides and keeps it."""
    model, batches = _tiny_bert()
    with torch.no_grad():
        for layer in model.encoder.layer:
            layer.output.dense.bias[5] = 60.0
            layer.attention.output.LayerNorm.weight[:2] = 10.0
            layer.output.LayerNorm.weight[:2] = 10.0
    gm = torch.export.export(model, (), kwargs=batches[0]).module()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = quantize(gm, QUANTIZERS["xnnpack"](), batches, ("keep_float",), held_out=1)[1]
        _, report = quantize(
            gm, QUANTIZERS["xnnpack"](), batches, "auto", held_out=1, adaround_seconds=1.0
        )
    steps = {s.method: s for s in report.steps}
    print(report)  # plain 47.16 dB; smooth 47.10 alone, 53.42 with keep_float (53.32 without)
    assert steps["smooth"].sqnr_db < report.plain_sqnr_db  # alone it does not pay
    assert steps["smooth"].kept and "with keep_float" in steps["smooth"].detail
    assert steps["keep_float"].kept and steps["keep_float"].sqnr_db > alone.sqnr_db
    assert report.sqnr_db > report.plain_sqnr_db + 5.0
