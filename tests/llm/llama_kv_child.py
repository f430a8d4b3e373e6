"""Run in a subprocess by test_kv_cache.py (importing transformers' Llama imports torchao, which
registers global Inductor passes): a 2-layer Llama exported with transformers' static cache,
8da8w linears + int8 KV cache, five decode steps against the float export. Prints JSON."""

from __future__ import annotations

import json

import torch
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.integrations.executorch import TorchExportableModuleWithStaticCache

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.quantizers import ComposableQuantizer, KVCacheQuantizer, XNNPACKQuantizer, llm_config


def main() -> None:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=100, max_position_embeddings=32,
    )  # fmt: skip
    model = LlamaForCausalLM(cfg).eval().requires_grad_(False)
    model.generation_config.cache_implementation = "static"
    model.generation_config.cache_config = {"batch_size": 1, "max_cache_len": 32}

    def export() -> torch.fx.GraphModule:
        wrapper = TorchExportableModuleWithStaticCache(model)
        kwargs = {"input_ids": torch.tensor([[5]]), "cache_position": torch.tensor([0])}
        return torch.export.export(wrapper, (), kwargs, strict=False).module()

    reference, gm = export(), export()
    quantizer = ComposableQuantizer(
        [KVCacheQuantizer(), XNNPACKQuantizer().set_global(llm_config("8da8w"))]
    )
    prepared = prepare_pt2e(gm, quantizer)
    prepared(input_ids=torch.tensor([[5]]), cache_position=torch.tensor([0]))
    converted = convert_pt2e(prepared)
    writes = [n for n in converted.graph.nodes if n.target == torch.ops.aten.index_copy_.default]
    dtypes = sorted({str(converted.get_buffer(str(n.args[0].target)).dtype) for n in writes})
    cosines = []
    for step, token in enumerate([5, 17, 42, 8, 3]):
        kwargs = {"input_ids": torch.tensor([[token]]), "cache_position": torch.tensor([step])}
        a, b = reference(**kwargs), converted(**kwargs)
        cosines.append(float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), 0)))
    print("@@" + json.dumps({"writes": len(writes), "dtypes": dtypes, "cosines": cosines}))


if __name__ == "__main__":
    main()
