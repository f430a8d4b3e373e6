"""pt2q: quantization for torch.export programs.

Public names follow ``torchao.quantization.pt2e``. Submodules:
``pt2q.quantizer`` (specs, Quantizer), ``pt2q.observer``, ``pt2q.fake_quantize``,
``pt2q.quantize_pt2e`` (prepare_pt2e, prepare_qat_pt2e, convert_pt2e),
``pt2q.quantizers``, ``pt2q.lowering``, ``pt2q.debugger``.
"""

import torch.ao.quantization.fx._decomposed  # noqa: F401  registers torch.ops.quantized_decomposed

__version__ = "0.1.0"

from pt2q.export_utils import (  # noqa: E402
    allow_exported_model_train_eval,
    move_exported_model_to_eval,
    move_exported_model_to_train,
)
from pt2q.quantize_pt2e import convert_pt2e, prepare_pt2e, prepare_qat_pt2e  # noqa: E402

__all__ = [
    "allow_exported_model_train_eval",
    "convert_pt2e",
    "move_exported_model_to_eval",
    "move_exported_model_to_train",
    "prepare_pt2e",
    "prepare_qat_pt2e",
]
