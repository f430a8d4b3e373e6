"""Behaviour 8 of issue 10: where torchao 0.18 raises a built-in exception type, pt2q's error is
an instance of that same type (so ``except`` / ``assertRaises`` in user code keep working).
torchao's types are read in a subprocess; pt2q's are raised here for the same misuse."""

from __future__ import annotations

import builtins
from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.fx import GraphModule
from torchao_peer import register, result

import pt2q
from pt2q import graph_utils, utils
from pt2q.observer import MinMaxObserver
from pt2q.quantizer import (
    QuantizationAnnotation,
    QuantizationConfig,
    QuantizationSpec,
    Quantizer,
    get_input_act_qspec,
    get_weight_qspec,
)
from pt2q.quantizers import ComposableQuantizer, XNNPACKQuantizer, get_symmetric_quantization_config

BUILTINS = ("ValueError", "RuntimeError", "NotImplementedError", "AssertionError", "TypeError")

# situation -> code raising it with torchao (names: ao = torchao.quantization.pt2e)
TORCHAO = {
    "composable_changes_annotation": """
from torchao.quantization.pt2e.quantizer import ComposableQuantizer, Quantizer, QuantizationAnnotation
class First(Quantizer):
    def annotate(self, gm):
        for n in gm.graph.nodes:
            n.meta["quantization_annotation"] = QuantizationAnnotation(_annotated=True)
        return gm
    def validate(self, gm): pass
class Second(First):
    pass
gm = torch.export.export(torch.nn.Linear(2, 2), (torch.randn(1, 2),)).module()
ComposableQuantizer([First(), Second()]).annotate(gm)
""",
    "train_on_prepared": """
from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e
from torchao.testing.pt2e._xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config
gm = torch.export.export(torch.nn.Linear(2, 2), (torch.randn(1, 2),)).module()
prepare_pt2e(gm, XNNPACKQuantizer().set_global(get_symmetric_quantization_config())).train()
""",
    "weight_qspec_not_symmetric": """
from torchao.quantization.pt2e.quantizer import QuantizationSpec, QuantizationConfig, get_weight_qspec
from torchao.quantization.pt2e.observer import MinMaxObserver
spec = QuantizationSpec(torch.uint8, MinMaxObserver, 0, 255, torch.per_tensor_affine)
get_weight_qspec(QuantizationConfig(None, None, spec, None))
""",
    "input_qspec_per_channel": """
from torchao.quantization.pt2e.quantizer import QuantizationSpec, QuantizationConfig, get_input_act_qspec
from torchao.quantization.pt2e.observer import MinMaxObserver
spec = QuantizationSpec(torch.int8, MinMaxObserver, -128, 127, torch.per_channel_symmetric, 0)
get_input_act_qspec(QuantizationConfig(spec, None, None, None))
""",
    "equivalent_types_none": """
from torchao.quantization.pt2e import update_equivalent_types_dict
update_equivalent_types_dict(None)
""",
    "repeated_partition_types": """
from torchao.quantization.pt2e import find_sequential_partitions
gm = torch.export.export(torch.nn.ReLU(), (torch.randn(2),)).module()
find_sequential_partitions(gm, [torch.nn.ReLU, torch.nn.functional.relu])
""",
    "qmin_qmax_without_zero": """
from torchao.quantization.pt2e.utils import validate_qmin_qmax
validate_qmin_qmax(1, 10)
""",
    "min_above_max": """
from torchao.quantization.pt2e.utils import check_min_max_valid
check_min_max_valid(torch.tensor([2.0]), torch.tensor([1.0]))
""",
    "unknown_dtype": """
from torchao.quantization.pt2e.utils import to_underlying_dtype
to_underlying_dtype(torch.float32)
""",
    "learnable_empty_range": """
from torchao.quantization.pt2e import LearnableFakeQuantize, MinMaxObserver
LearnableFakeQuantize(MinMaxObserver, 5, 5)
""",
}

_SNIPPET = """
import builtins
result = {}
for name, code in SITUATIONS.items():
    try:
        exec(code, {"torch": torch})
        result[name] = None
    except BaseException as e:  # noqa: BLE001
        result[name] = [b for b in BUILTINS if isinstance(e, getattr(builtins, b))]
"""


class _Claims(Quantizer):
    def annotate(self, model: GraphModule) -> GraphModule:
        for node in model.graph.nodes:
            node.meta["quantization_annotation"] = QuantizationAnnotation(_annotated=True)
        return model

    def validate(self, model: GraphModule) -> None:
        pass


def _linear_gm() -> GraphModule:
    return torch.export.export(nn.Linear(2, 2), (torch.randn(1, 2),)).module()


def _train_on_prepared() -> None:
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config())
    pt2q.prepare_pt2e(_linear_gm(), quantizer).train()


_ACT = QuantizationSpec(torch.uint8, MinMaxObserver, 0, 255, torch.per_tensor_affine)
_PC = QuantizationSpec(torch.int8, MinMaxObserver, -128, 127, torch.per_channel_symmetric, 0)

PT2Q: dict[str, Callable[[], object]] = {
    "composable_changes_annotation": lambda: ComposableQuantizer([_Claims(), _Claims()]).annotate(
        _linear_gm()
    ),
    "train_on_prepared": _train_on_prepared,
    "weight_qspec_not_symmetric": lambda: get_weight_qspec(
        QuantizationConfig(None, None, _ACT, None)
    ),
    "input_qspec_per_channel": lambda: get_input_act_qspec(
        QuantizationConfig(_PC, None, None, None)
    ),
    "equivalent_types_none": lambda: graph_utils.update_equivalent_types_dict(None),
    "repeated_partition_types": lambda: graph_utils.find_sequential_partitions(
        torch.export.export(nn.ReLU(), (torch.randn(2),)).module(),
        [nn.ReLU, torch.nn.functional.relu],
    ),
    "qmin_qmax_without_zero": lambda: utils.validate_qmin_qmax(1, 10),
    "min_above_max": lambda: utils.check_min_max_valid(torch.tensor([2.0]), torch.tensor([1.0])),
    "unknown_dtype": lambda: utils.to_underlying_dtype(torch.float32),
    "learnable_empty_range": lambda: pt2q.LearnableFakeQuantize(MinMaxObserver, 5, 5),
}


register("error_types", f"SITUATIONS = {TORCHAO!r}\nBUILTINS = {BUILTINS!r}\n{_SNIPPET}")


@pytest.fixture(scope="module")
def torchao_types() -> dict[str, list[str] | None]:
    return result("error_types")


@pytest.mark.parametrize("situation", list(TORCHAO))
def test_pt2q_error_is_an_instance_of_torchaos_type(
    situation: str, torchao_types: dict[str, list[str] | None]
) -> None:
    expected = torchao_types[situation]
    assert expected, f"torchao did not raise a built-in error for {situation}"
    with pytest.raises(Exception) as info:  # noqa: PT011 - the type is what is checked
        PT2Q[situation]()
    ours = [b for b in BUILTINS if isinstance(info.value, getattr(builtins, b))]
    assert set(expected) <= set(ours), (type(info.value).__mro__, expected)
