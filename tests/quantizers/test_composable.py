"""ComposableQuantizer (Embedding + XNNPACK) and EmbeddingQuantizer."""

from __future__ import annotations

import pytest
import torch
from helpers import count_qdq, describe, export
from models import EmbeddingLinear
from torch.fx import GraphModule

from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizer import Q_ANNOTATION_KEY, QuantizationAnnotation, Quantizer
from pt2q.quantizers import (
    AnnotationConflictError,
    ComposableQuantizer,
    EmbeddingQuantizer,
    XNNPACKQuantizer,
    get_symmetric_quantization_config,
)


def embedding_plus_xnnpack() -> ComposableQuantizer:
    xnn = XNNPACKQuantizer().set_global(get_symmetric_quantization_config())
    return ComposableQuantizer([EmbeddingQuantizer(), xnn])


def test_annotations_of_embedding_plus_xnnpack() -> None:
    gm = export(EmbeddingLinear(), torch.randint(0, 50, (2, 5)))
    embedding_plus_xnnpack().annotate(gm)
    assert describe(gm).splitlines() == [
        "embedding: in(emb_weight=u8c0) out=-",
        "linear: in(mean=i8, fc_weight=i8) out=i8",
    ]


def test_convert_embedding_plus_xnnpack() -> None:
    torch.manual_seed(0)
    model = EmbeddingLinear().eval()
    idx = torch.randint(0, 50, (4, 5), generator=torch.Generator().manual_seed(0))
    prepared = prepare_pt2e(export(model, idx), embedding_plus_xnnpack())
    prepared(idx)
    converted = convert_pt2e(prepared)
    # embedding table: uint8 constant, float-qparams rows as one channel group per row (exact
    # float zero points, tests/regressions/test_float_qparams_rows.py); linear: per-tensor weight
    assert count_qdq(converted) == {
        "dequantize_per_channel_group.default": 1,
        "dequantize_per_tensor.default": 3,
        "quantize_per_tensor.default": 2,
    }
    (dq_emb,) = [
        n
        for n in converted.graph.nodes
        if n.target == torch.ops.quantized_decomposed.dequantize_per_channel_group.default
    ]
    assert dq_emb.args[3:] == (0, 255, torch.uint8, 16, torch.float32)
    cos = torch.nn.functional.cosine_similarity(
        converted(idx).flatten(), model(idx).flatten(), dim=0
    )
    assert cos > 0.99


class _Overwriter(Quantizer):
    """Replaces whatever annotation the linear has (a buggy second quantizer)."""

    def annotate(self, model: GraphModule) -> GraphModule:
        for node in model.graph.nodes:
            if node.target == torch.ops.aten.linear.default:
                node.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(_annotated=True)
        return model

    def validate(self, model: GraphModule) -> None:
        return


def test_later_quantizer_changing_annotation_raises_naming_both() -> None:
    gm = export(EmbeddingLinear(), torch.randint(0, 50, (2, 5)))
    xnn = XNNPACKQuantizer().set_global(get_symmetric_quantization_config())
    composed = ComposableQuantizer([EmbeddingQuantizer(), xnn, _Overwriter()])
    with pytest.raises(
        AnnotationConflictError,
        match=r"node 'linear' \(aten.linear.default\): _Overwriter \(quantizers\[2\]\) changed the "
        r"annotation written by XNNPACKQuantizer \(quantizers\[1\]\)",
    ):
        composed.annotate(gm)


def test_composable_rejects_non_quantizer() -> None:
    with pytest.raises(TypeError, match=r"quantizers\[1\]: expected a Quantizer, found 3"):
        ComposableQuantizer([EmbeddingQuantizer(), 3])  # type: ignore[list-item]
