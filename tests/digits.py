"""Real data for accuracy tests: scikit-learn's 8x8 digits (shipped with the package, no download)
and a small conv-bn-relu CNN trained on it, deterministically, once per process.

Used by the quantizer, ARM-lowering and QAT tests:
    x_train, y_train, x_test, y_test = digits_data()   # (N, 1, 8, 8) float32 in [0, 1], int64 labels
    model = trained_digits_cnn()                        # a fresh copy in eval mode each call
    accuracy(model, x_test, y_test)                     # percent
"""

from __future__ import annotations

import copy
import functools

import torch
from torch import nn

__all__ = ["DigitsCNN", "digits_data", "trained_digits_cnn", "accuracy"]


class DigitsCNN(nn.Module):
    """conv-bn-relu x2 -> maxpool -> conv-bn-relu -> adaptive avgpool -> linear-relu -> linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.pool = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(32)
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))  # (N, 16, 8, 8)
        x = torch.relu(self.bn2(self.conv2(x)))  # (N, 32, 8, 8)
        x = self.pool(x)  # (N, 32, 4, 4)
        x = torch.relu(self.bn3(self.conv3(x)))  # (N, 32, 4, 4)
        x = torch.flatten(self.avg(x), 1)  # (N, 32)
        return self.fc2(torch.relu(self.fc1(x)))  # (N, 10)


@functools.lru_cache(maxsize=1)
def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (1797, 1, 8, 8)
    y = torch.tensor(digits.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    n_train = 1400
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def digits_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train (1400,1,8,8), y_train, x_test (397,1,8,8), y_test), a fixed seeded split."""
    return tuple(t.clone() for t in _data())  # type: ignore[return-value]


@functools.lru_cache(maxsize=1)
def _trained() -> DigitsCNN:
    # One intra-op thread: on a loaded 2-core machine two threads oversubscribe (32 s vs 4 s),
    # and the trained weights would depend on the thread count (reductions change order).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train()
    finally:
        torch.set_num_threads(threads)


def _train() -> DigitsCNN:
    torch.manual_seed(0)
    x_train, y_train, _, _ = _data()
    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(1)
    model.train()
    for _epoch in range(8):
        perm = torch.randperm(len(y_train), generator=gen)
        for i in range(0, len(perm), 64):
            idx = perm[i : i + 64]
            loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def trained_digits_cnn() -> DigitsCNN:
    """A fresh copy (eval mode) of the CNN trained once per process (~97-99% test accuracy)."""
    return copy.deepcopy(_trained())


@torch.no_grad()
def accuracy(
    model: torch.nn.Module | torch.fx.GraphModule, x: torch.Tensor, y: torch.Tensor
) -> float:
    """Top-1 accuracy in percent."""
    pred = model(x).argmax(dim=1)
    return 100.0 * float((pred == y).float().mean())
