"""pt2q.debugger: numeric debugger for quantized ``torch.export`` programs.

Entry points compatible with ``torchao.quantization.pt2e._numeric_debugger``, plus stable
structural handles, fusion-aware groups, metrics, error modes, sensitivity, reports and the CLI.
"""

from pt2q.debugger.handles import (
    CUSTOM_KEY,
    NUMERIC_DEBUG_HANDLE_KEY,
    generate_numeric_debug_handle,
    get_handle,
)

__all__ = [
    "CUSTOM_KEY",
    "NUMERIC_DEBUG_HANDLE_KEY",
    "generate_numeric_debug_handle",
    "get_handle",
]
