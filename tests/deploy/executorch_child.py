"""Deploy a quantized model through ExecuTorch's XNNPACK backend, in its own process.

    python executorch_child.py FLOW        FLOW: pt2q | torchao

For every case, quantizes its model with FLOW's XNNPACKQuantizer (pt2q, or torchao's test copy of
ExecuTorch's quantizer), converts, lowers with ``to_edge_transform_and_lower`` and the
``XnnpackPartitioner``, serialises the ``.pte`` buffer, runs it in ExecuTorch's runtime and prints
one JSON line, per case: which ops stayed outside the delegate, how many delegate calls there are, and the
runtime's outputs against the converted (reference) program's, in steps of the output's
quantization scale. Run in a subprocess: pt2q never imports executorch (or torchao) itself.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import torch


class ConvNet(torch.nn.Module):
    """conv -> relu -> max_pool -> conv (+ residual add) -> linear: static int8 everywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, 8, 8)
        y = torch.nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)  # (N, 8, 4, 4)
        y = y + self.conv2(y)
        return self.fc(y.flatten(1))  # (N, 10)


class Mlp(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(16, 32)
        self.fc2 = torch.nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 16)
        return self.fc2(torch.relu(self.fc1(x)))


class Block(torch.nn.Module):
    """A post-LN FFN block: its linears are read only by float ops (GELU, the residual adds kept
    float), so pt2q makes them per-token dynamic (``annotators/float_read_linears.py``); ``up``
    and ``side`` share one dynamic quantization of ``x``."""

    def __init__(self) -> None:
        super().__init__()
        self.up = torch.nn.Linear(16, 64)
        self.down = torch.nn.Linear(64, 16)
        self.side = torch.nn.Linear(16, 16)
        self.norm = torch.nn.LayerNorm(16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, 16)
        return self.norm(x + self.down(torch.nn.functional.gelu(self.up(x))) + self.side(x))


CASES: dict[str, tuple[type[torch.nn.Module], tuple[int, ...], dict[str, Any]]] = {
    "static_per_channel_cnn": (ConvNet, (2, 1, 8, 8), {"is_per_channel": True}),
    "static_per_tensor_cnn": (ConvNet, (2, 1, 8, 8), {"is_per_channel": False}),
    "dynamic_mlp": (Mlp, (3, 16), {"is_per_channel": True, "is_dynamic": True}),
    "float_read_linears": (Block, (2, 5, 16), {"is_per_channel": True}),
    "dynamic_block": (Block, (2, 5, 16), {"is_per_channel": True, "is_dynamic": True}),
}


def _quantizer(flow: str, config_kwargs: dict[str, Any]) -> Any:
    if flow == "pt2q":
        from pt2q.quantizers import xnnpack_quantizer as xq
    else:
        from torchao.testing.pt2e import _xnnpack_quantizer as xq
    return xq.XNNPACKQuantizer().set_global(xq.get_symmetric_quantization_config(**config_kwargs))


def _flow(flow: str) -> tuple[Any, Any]:
    if flow == "pt2q":
        from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e
    else:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    return prepare_pt2e, convert_pt2e


def _output_scale(converted: torch.fx.GraphModule) -> float | None:
    """Scale of the dequantize that produces the program's output (None: float output)."""
    (out,) = converted.graph.find_nodes(op="output")
    producer = out.args[0][0]
    if "dequantize_per_tensor" in str(producer.target):
        return float(producer.args[1])
    return None


def run(case: str, flow: str) -> dict[str, Any]:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    torch.manual_seed(0)
    model_cls, shape, config_kwargs = CASES[case]
    model = model_cls().eval()
    inputs = (torch.randn(shape),)
    prepare_pt2e, convert_pt2e = _flow(flow)
    prepared = prepare_pt2e(
        torch.export.export(model, inputs).module(), _quantizer(flow, config_kwargs)
    )
    with torch.no_grad():
        for _ in range(4):
            prepared(torch.randn(shape))
        converted = convert_pt2e(prepared)
        reference = converted(*inputs)
        float_out = model(*inputs)
    edge = to_edge_transform_and_lower(
        torch.export.export(converted, inputs), partitioner=[XnnpackPartitioner()]
    )
    graph = edge.exported_program().graph_module.graph
    calls = [n for n in graph.nodes if n.op == "call_function"]
    delegates = [n for n in calls if "executorch_call_delegate" in str(n.target)]
    outside = sorted(
        {str(n.target) for n in calls if n not in delegates and "getitem" not in str(n.target)}
    )
    in_reference = sorted(
        {str(n.target) for n in converted.graph.nodes if "quantized_decomposed" in str(n.target)}
    )
    buffer = edge.to_executorch().buffer
    method = Runtime.get().load_program(buffer).load_method("forward")
    (deployed,) = method.execute(list(inputs))
    scale = _output_scale(converted)
    diff = (deployed.double() - reference.double()).abs().max().item()
    return {
        "delegates": len(delegates),
        "outside_delegate": outside,
        "qdq_ops": in_reference,
        "reference": reference.double().flatten().tolist(),
        "pte_bytes": len(buffer),
        "max_abs_diff": diff,
        "output_scale": scale,
        "deployed": deployed.double().flatten().tolist(),
        "float": float_out.double().flatten().tolist(),
    }


if __name__ == "__main__":
    print("@@executorch@@" + json.dumps({case: run(case, sys.argv[1]) for case in CASES}))
