"""pt2q quickstart: quantize a CNN trained on scikit-learn's digits with the X86 Inductor
quantizer, end to end, and print what happened.

    .venv/bin/python examples/quickstart.py

Steps: train a small float CNN (seeded, a few seconds), torch.export it, prepare_pt2e with
X86InductorQuantizer, calibrate on training images, convert_pt2e to the reference int8
program, then compare accuracy, output SQNR and the q/dq ops in the graph. Nothing is downloaded.
"""

from __future__ import annotations

import time

import torch
from sklearn.datasets import load_digits
from torch import nn

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.quantizers import X86InductorQuantizer, get_default_x86_inductor_quantization_config


class SmallCNN(nn.Module):
    """(N, 1, 8, 8) digit images -> 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),  # (N, 16, 8, 8)
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, 32, 4, 4)
        )  # fmt: skip
        self.classifier = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def load() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    return x[:1400], y[:1400], x[1400:], y[1400:]


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> nn.Module:
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(8):  # epochs
        for i in range(0, len(x), 64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[i : i + 64]), y[i : i + 64]).backward()
            opt.step()
    return model.eval()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean() * 100)


def main() -> None:
    torch.manual_seed(0)
    x_train, y_train, x_test, y_test = load()
    float_model = train(SmallCNN(), x_train, y_train)

    t0 = time.perf_counter()
    batch = torch.export.Dim("batch")
    exported = torch.export.export(
        float_model, (x_train[:32],), dynamic_shapes={"x": {0: batch}}
    ).module()
    quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(exported, quantizer)
    for i in range(0, 512, 32):  # calibration
        prepared(x_train[i : i + 32])
    converted = convert_pt2e(prepared)
    elapsed = time.perf_counter() - t0

    with torch.no_grad():
        ref, out = float_model(x_test), converted(x_test)
    sqnr = float(20 * torch.log10(ref.norm() / (ref - out).norm()))
    ops = [str(node.target) for node in converted.graph.nodes if node.op == "call_function"]
    n_q = sum("quantize_per_tensor" in o and "dequantize" not in o for o in ops)
    n_dq = sum("dequantize" in o for o in ops)
    print(f"float accuracy      : {accuracy(float_model, x_test, y_test):.2f} %")
    print(f"int8 accuracy       : {accuracy(converted, x_test, y_test):.2f} %")
    print(f"output SQNR         : {sqnr:.1f} dB")
    print(f"q / dq ops in graph : {n_q} / {n_dq}")
    print(f"export+prepare+calibrate+convert: {elapsed:.2f} s")
    print(quantizer.coverage(prepared))


if __name__ == "__main__":
    main()
