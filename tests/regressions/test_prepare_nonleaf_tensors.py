"""Regression: prepare_pt2e copies exported models whose tensors carry autograd history.

transformers' static KV cache is written with ``index_copy_`` while gradients are on, so the
exported module's cache buffers are non-leaf tensors, and ``copy.deepcopy`` (prepare's copy of
the user's model) refused them unless the user called ``requires_grad_(False)`` first. The copy
now takes their values detached; the user's tensors keep their history, values and identity.
"""

from __future__ import annotations

import torch
from torch.fx import GraphModule

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.quantizers import XNNPACKQuantizer, get_symmetric_quantization_config


def _quantizer() -> XNNPACKQuantizer:
    return XNNPACKQuantizer().set_global(get_symmetric_quantization_config())


def _nonleaf_buffers(gm: GraphModule) -> dict[str, torch.Tensor]:
    return {name: t for name, t in gm.named_buffers() if not t.is_leaf}


def test_llama_static_cache_prepares_without_requires_grad_false() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.integrations.executorch import TorchExportableModuleWithStaticCache

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=16,
    )  # fmt: skip
    model = LlamaForCausalLM(cfg).eval()  # no requires_grad_(False), as users write it
    model.generation_config.cache_implementation = "static"
    model.generation_config.cache_config = {"batch_size": 1, "max_cache_len": 16}
    kwargs = {"input_ids": torch.tensor([[5]]), "cache_position": torch.tensor([0])}
    gm = torch.export.export(
        TorchExportableModuleWithStaticCache(model), (), kwargs, strict=False
    ).module()
    user = _nonleaf_buffers(gm)
    assert user, "precondition: the exported cache buffers carry autograd history"
    before = {name: (t.grad_fn, t.clone()) for name, t in user.items()}

    prepared = prepare_pt2e(gm, _quantizer())

    copied = dict(prepared.named_buffers())
    for name, t in user.items():  # the user's tensors: same history, same values
        grad_fn, value = before[name]
        assert t.grad_fn is grad_fn and t.requires_grad
        torch.testing.assert_close(t, value, rtol=0, atol=0)
        assert copied[name].is_leaf and not copied[name].requires_grad
        assert copied[name].data_ptr() != t.data_ptr()  # the prepared cache is its own
        torch.testing.assert_close(copied[name], value, rtol=0, atol=0)
    with torch.no_grad():
        prepared(**kwargs)
        converted = convert_pt2e(prepared)
        out = converted(**kwargs)
    for name, t in user.items():  # running the prepared copy never wrote the user's cache
        torch.testing.assert_close(t, before[name][1], rtol=0, atol=0)
    assert torch.isfinite(out).all()


class _Cached(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)
        self.register_buffer("cache", torch.zeros(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.cache


def test_aliasing_nonleaf_buffers_stay_aliased_in_the_copy() -> None:
    gm = torch.export.export(_Cached().eval(), (torch.randn(2, 4),)).module()
    base = torch.zeros(8, requires_grad=True) * 1.0  # non-leaf
    gm.cache = base[:4]
    gm.register_buffer("cache_alias", base[2:6])  # overlaps the first: one storage
    prepared = prepare_pt2e(gm, _quantizer())
    copy, alias = prepared.get_buffer("cache"), prepared.get_buffer("cache_alias")
    assert copy.untyped_storage().data_ptr() == alias.untyped_storage().data_ptr()
    assert copy.untyped_storage().data_ptr() != base.untyped_storage().data_ptr()
    assert not gm.get_buffer("cache").is_leaf  # the user's buffer is untouched
