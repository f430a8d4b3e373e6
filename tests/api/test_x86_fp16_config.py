"""get_x86_inductor_linear_dynamic_fp16_config: float16 linear weights, float activations; the
converted program stores each weight as a float16 round trip and runs."""

from __future__ import annotations

import torch
from torch import nn

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.quantizers import X86InductorQuantizer
from pt2q.quantizers.x86_inductor_quantizer import get_x86_inductor_linear_dynamic_fp16_config

qd = torch.ops.quantized_decomposed


def test_config_fields() -> None:
    config = get_x86_inductor_linear_dynamic_fp16_config()
    assert config.input_activation is None and config.output_activation is None
    assert config.bias is None and config.weight is not None
    assert config.weight.dtype == torch.float16
    assert config is get_x86_inductor_linear_dynamic_fp16_config()  # cached, as torchao's


def test_linear_weights_become_float16_round_trips() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).eval()
    x = torch.randn(2, 3, 8, 8)
    quantizer = X86InductorQuantizer().set_module_type_qconfig(
        nn.Linear, get_x86_inductor_linear_dynamic_fp16_config()
    )
    prepared = prepare_pt2e(torch.export.export(model, (x,)).module(), quantizer)
    prepared(x)
    converted = convert_pt2e(prepared)
    casts = [n for n in converted.graph.nodes if n.target == qd.convert_element_type.no_fuse]
    assert [c.args[1] for c in casts] == [torch.float16, torch.float32]  # the linear weight only
    assert not any("quantize_per" in str(n.target) for n in converted.graph.nodes)
    linear = model[2]
    with torch.no_grad():
        expected = nn.functional.linear(
            model[1](model[0](x)), linear.weight.half().float(), linear.bias
        )
        assert torch.equal(converted(x), expected)
