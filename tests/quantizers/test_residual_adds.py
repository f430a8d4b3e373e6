"""XNNPACKQuantizer leaves transformers' residual adds (read only by normalization) float, with a
coverage reason; ``set_residual_add_quantization(True)`` restores torchao's int8 adds. Adds that
feed int8 consumers (a ResNet block's add -> relu -> conv) stay quantized."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from pt2q.algorithms.batches import output_sqnr
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
from pt2q.quantizers import XNNPACKQuantizer, coverage, get_symmetric_quantization_config
from pt2q.quantizers.annotators.residual import find_residual_adds

LAYERS = 2
OUTLIER_CHANNEL = 5


def _tiny_bert() -> tuple[nn.Module, list[dict[str, torch.Tensor]]]:
    """2-layer BERT (hidden 32) whose FFN outputs add a 60x outlier channel to the residual
    stream, as trained BERTs have; 4 batches of token ids with padding."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=LAYERS,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=32,
        attn_implementation="eager",
    )
    model = transformers.BertModel(config, add_pooling_layer=False).eval()
    with torch.no_grad():
        for layer in model.encoder.layer:
            layer.output.dense.bias[OUTLIER_CHANNEL] = 60.0
    g = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(4):
        mask = torch.ones(2, 16, dtype=torch.int64)
        mask[1, 10:] = 0
        batches.append(
            {"input_ids": torch.randint(0, 100, (2, 16), generator=g), "attention_mask": mask}
        )
    return model, batches


def _quantizer(quantize_residual: bool) -> XNNPACKQuantizer:
    q = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    return q.set_residual_add_quantization(quantize_residual)


def _sqnr(quantize_residual: bool) -> tuple[float, dict[str, str]]:
    model, batches = _tiny_bert()
    gm = torch.export.export(model, (), kwargs=batches[0]).module()
    prepared = prepare_pt2e(gm, _quantizer(quantize_residual))
    reasons = coverage(prepared).float_reasons
    for b in batches[:-1]:
        prepared(**b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the health warning names the outlier ranges
        converted = convert_pt2e(prepared)
    with torch.no_grad():
        ref, out = model(**batches[-1]), converted(**batches[-1])
    return output_sqnr([ref], [out]), reasons


def test_residual_adds_stay_float_with_reason_and_gain_accuracy() -> None:
    float_sqnr, reasons = _sqnr(quantize_residual=False)
    int8_sqnr, int8_reasons = _sqnr(quantize_residual=True)
    residual = {n: r for n, r in reasons.items() if r.startswith("residual add")}
    # two per layer (attention, FFN) + the embeddings' two sums before their LayerNorm
    assert len(residual) == 2 * LAYERS + 2
    assert all("set_residual_add_quantization(True)" in r for r in residual.values())
    assert not any(r.startswith("residual add") for r in int8_reasons.values())
    assert set(residual) <= set(_quantized_with_opt_in())
    print(f"output SQNR residual adds float {float_sqnr:.1f} dB, int8 {int8_sqnr:.1f} dB")
    assert float_sqnr >= int8_sqnr + 6.0


def _quantized_with_opt_in() -> list[str]:
    model, batches = _tiny_bert()
    gm = torch.export.export(model, (), kwargs=batches[0]).module()
    return coverage(prepare_pt2e(gm, _quantizer(True))).quantized


class _ResBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.norm = nn.LayerNorm(8)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.relu(self.conv1(x) + x)  # add -> relu -> conv: int8 consumers
        z = self.conv2(y) + y  # read by conv-free norm AND returned: not only normalization
        return self.norm(z), z


def test_adds_with_other_consumers_stay_quantized() -> None:
    gm = torch.export.export(_ResBlock().eval(), (torch.randn(1, 4, 8, 8),)).module()
    assert find_residual_adds(gm) == {}
    prepared = prepare_pt2e(gm, _quantizer(False))
    adds = [e for e in coverage(prepared).entries if "add" in e.op]
    assert len(adds) == 2 and all(e.quantized for e in adds)


def test_pre_ln_chain_is_found() -> None:
    class PreLN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.ln2, self.lnf = nn.LayerNorm(8), nn.LayerNorm(8), nn.LayerNorm(8)
            self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 8)

        def forward(self, h: torch.Tensor) -> torch.Tensor:
            h = h + self.fc1(self.ln1(h))  # read by ln2 and the next add
            h = h + self.fc2(self.ln2(h))  # read by lnf only
            return self.lnf(h)

    gm = torch.export.export(PreLN().eval(), (torch.randn(2, 3, 8),)).module()
    found = find_residual_adds(gm)
    assert sorted(n.name for n in found) == ["add", "add_1"]
    assert {n.name: norm.name for n, norm in found.items()} == {
        "add": "layer_norm_1",
        "add_1": "layer_norm_2",
    }
