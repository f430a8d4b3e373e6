"""A one-layer decoder attention with a static KV cache, written three ways (index_put_,
index_copy_, copy_ into a slice), and a model with aliased cache buffers."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CachedAttention", "AliasedCache", "H", "D", "S"]

H, D, S = 2, 8, 16  # heads, head_dim, cache length


class CachedAttention(nn.Module):
    """x (1, T, H*D), positions (T,) -> attention over the whole cache (1, T, H*D)."""

    def __init__(self, write: str = "index_put_") -> None:
        super().__init__()
        self.write = write
        self.wq = nn.Linear(H * D, H * D)
        self.wk = nn.Linear(H * D, H * D)
        self.wv = nn.Linear(H * D, H * D)
        self.register_buffer("k_cache", torch.zeros(1, H, S, D))  # (B, H, S, D)
        self.register_buffer("v_cache", torch.zeros(1, H, S, D))

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.wq(x).view(b, t, H, D).transpose(1, 2)  # (B, H, T, D)
        k = self.wk(x).view(b, t, H, D).transpose(1, 2)
        v = self.wv(x).view(b, t, H, D).transpose(1, 2)
        if self.write == "copy_":  # positions are contiguous: pos[0] .. pos[0] + t
            start = 0 if t > 1 else 3  # (static slices; export specialises them)
            self.k_cache[:, :, start : start + t].copy_(k)
            self.v_cache[:, :, start : start + t].copy_(v)
        else:
            self.k_cache[:, :, pos] = k  # index_put_
            self.v_cache.index_copy_(2, pos, v)
        att = torch.softmax(q @ self.k_cache.transpose(-1, -2) / D**0.5, dim=-1)
        return (att @ self.v_cache).transpose(1, 2).reshape(b, t, H * D)


class AliasedCache(nn.Module):
    """k_cache is a view of the kv buffer: the two share storage."""

    def __init__(self) -> None:
        super().__init__()
        kv = torch.zeros(2, 1, H, S, D)
        self.register_buffer("kv", kv)
        self.register_buffer("k_cache", kv[0])

    def forward(self, k: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        self.k_cache[:, :, pos] = k
        return self.kv.sum(0)
