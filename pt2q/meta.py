"""Node metadata that pt2q carries from an original node onto the nodes it creates."""

from __future__ import annotations

from torch.fx import Node

__all__ = ["CARRIED_META_KEYS", "QUANTIZED_OUTPUT_KEY", "copy_meta"]

# nn_module_stack / stack_trace keep module paths and source lines for debugging. "custom" (user
# data, numeric debug handles) is deliberately not copied: a handle names one float node, and the
# q/dq nodes around it must not claim it too.
CARRIED_META_KEYS = ("nn_module_stack", "stack_trace", "source_fn_stack", "from_node")

# On a lowered node whose output is an integer tensor (e.g. a NEON int8 op): the (scale,
# zero_point) that dequantizes it, so the debugger compares it with the reference's float values.
QUANTIZED_OUTPUT_KEY = "pt2q_quantized_output"


def copy_meta(src: Node, dst: Node) -> None:
    """Copy the carried metadata keys of ``src`` onto ``dst`` (only those ``src`` has)."""
    for key in CARRIED_META_KEYS:
        if key in src.meta:
            dst.meta[key] = src.meta[key]
