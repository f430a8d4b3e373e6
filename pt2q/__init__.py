"""pt2q: quantization for torch.export programs.

Public names follow ``torchao.quantization.pt2e`` (its ``__all__``, name for name). Submodules:
``pt2q.quantizer`` (specs, Quantizer, annotation helpers), ``pt2q.observer``,
``pt2q.fake_quantize``, ``pt2q.quantize_pt2e`` (prepare_pt2e, prepare_qat_pt2e, convert_pt2e),
``pt2q.export_utils``, ``pt2q.graph_utils``, ``pt2q.utils``, ``pt2q.affine``,
``pt2q.quantizers``, ``pt2q.lowering``, ``pt2q.debugger``.
"""

import importlib
from typing import Any

import torch.ao.quantization.fx._decomposed  # noqa: F401  registers torch.ops.quantized_decomposed

__version__ = "0.1.0"

from pt2q.affine import (  # noqa: E402
    Granularity,
    MappingType,
    PerAxis,
    PerBlock,
    PerGroup,
    PerRow,
    PerTensor,
    PerToken,
    TorchAODType,
    ZeroPointDomain,
    get_block_size,
)
from pt2q.export_utils import (  # noqa: E402
    WrapperModule,
    allow_exported_model_train_eval,
    move_exported_model_to_eval,
    move_exported_model_to_train,
)
from pt2q.fake_quantize import (  # noqa: E402
    FakeQuantize,
    FakeQuantizeBase,
    FixedQParamsFakeQuantize,
    FusedMovingAvgObsFakeQuantize,
    LearnableFakeQuantize,
    default_dynamic_fake_quant,
    default_fake_quant,
    disable_fake_quant,
    disable_observer,
    disable_range_learning,
    enable_fake_quant,
    enable_observer,
    enable_range_learning,
)
from pt2q.graph_utils import (  # noqa: E402
    bfs_trace_with_node_process,
    find_sequential_partitions,
    get_equivalent_types,
    update_equivalent_types_dict,
)
from pt2q.observer import (  # noqa: E402
    AffineQuantizedObserverBase,
    DerivedObserverOrFakeQuantize,
    FixedQParamsObserver,
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    NoopObserver,
    ObserverBase,
    PartialWrapper,
    PerChannelMinMaxObserver,
    PlaceholderObserver,
    RecordingObserver,
    ReuseInputObserver,
    UniformQuantizationObserverBase,
)
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e, prepare_qat_pt2e  # noqa: E402
from pt2q.quantizer.specs import (  # noqa: E402
    ObserverOrFakeQuantize,
    ObserverOrFakeQuantizeConstructor,
)

# The debugger imports pt2q itself: its names are loaded on first access.
_LAZY = {
    "CUSTOM_KEY": "pt2q.debugger",
    "NUMERIC_DEBUG_HANDLE_KEY": "pt2q.debugger",
    "FROM_NODE_KEY": "pt2q.debugger",
    "generate_numeric_debug_handle": "pt2q.debugger",
    "prepare_for_propagation_comparison": "pt2q.debugger",
    "extract_results_from_loggers": "pt2q.debugger",
    "compare_results": "pt2q.debugger",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pt2q' has no attribute {name!r}")


__all__ = [
    # flow
    "convert_pt2e",
    "prepare_pt2e",
    "prepare_qat_pt2e",
    # fake quantizers
    "FakeQuantize",
    "FakeQuantizeBase",
    "FixedQParamsFakeQuantize",
    "FusedMovingAvgObsFakeQuantize",
    "LearnableFakeQuantize",
    "default_dynamic_fake_quant",
    "default_fake_quant",
    # observers
    "DerivedObserverOrFakeQuantize",
    "FixedQParamsObserver",
    "HistogramObserver",
    "MinMaxObserver",
    "MovingAverageMinMaxObserver",
    "MovingAveragePerChannelMinMaxObserver",
    "NoopObserver",
    "ObserverBase",
    "ObserverOrFakeQuantize",
    "ObserverOrFakeQuantizeConstructor",
    "PartialWrapper",
    "PerChannelMinMaxObserver",
    "PlaceholderObserver",
    "RecordingObserver",
    "ReuseInputObserver",
    "UniformQuantizationObserverBase",
    # switches
    "disable_fake_quant",
    "disable_observer",
    "disable_range_learning",
    "enable_fake_quant",
    "enable_observer",
    "enable_range_learning",
    # export_utils
    "WrapperModule",
    "allow_exported_model_train_eval",
    "move_exported_model_to_eval",
    "move_exported_model_to_train",
    # graph_utils
    "bfs_trace_with_node_process",
    "find_sequential_partitions",
    "get_equivalent_types",
    "update_equivalent_types_dict",
    # affine quantization (pt2q.affine)
    "AffineQuantizedObserverBase",
    "Granularity",
    "MappingType",
    "PerAxis",
    "PerBlock",
    "PerGroup",
    "PerRow",
    "PerTensor",
    "PerToken",
    "TorchAODType",
    "ZeroPointDomain",
    "get_block_size",
    # numeric debugger, loaded on first access
    *_LAZY,
]
