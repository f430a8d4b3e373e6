"""Every ``node.meta`` / ``GraphModule.meta`` key pt2q writes, and the accessors that read them.

One place, so that a quantizer, a pass, a lowering and the debugger never spell a key twice:

| key                                           | on             | written by             | holds                                   |
| --------------------------------------------- | -------------- | ---------------------- | --------------------------------------- |
| ``quantization_annotation``                   | node           | quantizers             | ``QuantizationAnnotation``              |
| ``pt2q_int8_output``                          | node           | quantizers             | the node's output is int8 (bool)        |
| ``pt2q_float_reason``                         | node           | quantizers             | why the node stays float (str)          |
| ``pt2q_fused_into``                           | node           | quantizers             | name of the anchor a post-op fuses into |
| ``custom["numeric_debug_handle"]``            | node           | the debugger           | the node's numeric debug handle (int)   |
| ``custom["pt2q_handle_from_node"]``           | node           | the debugger           | the handle was derived from provenance  |
| ``pt2q_rounded_weight``                       | get_attr node  | rounding algorithms    | the integer weight convert must fold    |
| ``pt2q_quantized_output``                     | node           | lowerings              | (scale, zero point) of an int8 output   |
| ``pt2q``                                      | GraphModule    | prepare / convert      | stage, QAT flag, observer descriptions  |
| ``pt2q["kept_float"]``                        | GraphModule    | algorithms             | node -> why its output stays float      |
| ``pt2q["kept_float_ops"]``                    | GraphModule    | algorithms             | op -> why it computes in float          |
| ``pt2q_x86_llm``                              | GraphModule    | x86 LLM lowering       | its decisions, for the lowering report  |

The debug handle lives under ``meta["custom"]`` because ``torch.export`` carries that dict
through ``run_decompositions``, re-export and save/load.
"""

from __future__ import annotations

from torch.fx import Node

__all__ = [
    "Q_ANNOTATION_KEY",
    "INT8_OUTPUT_KEY",
    "FLOAT_REASON_KEY",
    "FUSED_INTO_KEY",
    "CUSTOM_KEY",
    "NUMERIC_DEBUG_HANDLE_KEY",
    "DERIVED_HANDLE_KEY",
    "ROUNDED_WEIGHT_KEY",
    "QUANTIZED_OUTPUT_KEY",
    "PT2Q_META_KEY",
    "KEPT_FLOAT_KEY",
    "KEPT_FLOAT_OPS_KEY",
    "kept_float_reasons",
    "X86_LLM_META_KEY",
    "CARRIED_META_KEYS",
    "get_handle",
    "set_handle",
    "copy_handle",
    "get_quantized_output",
    "set_quantized_output",
    "copy_meta",
]

# ---------------------------------------------------------------- written by quantizers
Q_ANNOTATION_KEY = "quantization_annotation"
INT8_OUTPUT_KEY = "pt2q_int8_output"
FLOAT_REASON_KEY = "pt2q_float_reason"
FUSED_INTO_KEY = "pt2q_fused_into"

# ---------------------------------------------------------------- numeric debug handles
CUSTOM_KEY = "custom"
NUMERIC_DEBUG_HANDLE_KEY = "numeric_debug_handle"
# In meta["custom"] next to a handle the debugger derived from ``from_node`` provenance.
DERIVED_HANDLE_KEY = "pt2q_handle_from_node"

# ---------------------------------------------------------------- written by algorithms
# On a weight's get_attr node: the integer tensor an algorithm chose for it (adaptive rounding);
# convert's folding uses it instead of quantizing the float weight again.
ROUNDED_WEIGHT_KEY = "pt2q_rounded_weight"

# ---------------------------------------------------------------- written by lowerings
# On a lowered node whose output is an integer tensor (e.g. a NEON int8 op): the (scale,
# zero_point) that dequantizes it, so the debugger compares it with the reference's float values.
QUANTIZED_OUTPUT_KEY = "pt2q_quantized_output"

# ---------------------------------------------------------------- GraphModule.meta
# {"stage": "prepared" | "converted", "is_qat": bool, "observers": {module: [described keys]},
#  "health": {node: Health} (convert), "kept_float" / "kept_float_ops": {node: reason}
#  (pt2q.algorithms)}
PT2Q_META_KEY = "pt2q"
# In meta["pt2q"], written by pt2q.algorithms, carried by convert, read by the reports:
# {node name: why its output stays float} (an activation: its readers take the float value)
KEPT_FLOAT_KEY = "kept_float"
# {op name: why the op computes in float} (its weight and activation inputs stay float)
KEPT_FLOAT_OPS_KEY = "kept_float_ops"
# Where the x86 LLM pass leaves its decisions until the lowering report is assembled.
X86_LLM_META_KEY = "pt2q_x86_llm"

# Keys pt2q carries from an original node onto the nodes it creates: nn_module_stack /
# stack_trace keep module paths and source lines for debugging. "custom" (user data, numeric
# debug handles) is deliberately not carried: a handle names one float node, and the q/dq nodes
# around it must not claim it too.
CARRIED_META_KEYS = ("nn_module_stack", "stack_trace", "source_fn_stack", "from_node")


def get_handle(node: Node) -> int | None:
    """The numeric debug handle of ``node``, or None when it has none."""
    custom = node.meta.get(CUSTOM_KEY)
    if not isinstance(custom, dict):
        return None
    handle = custom.get(NUMERIC_DEBUG_HANDLE_KEY)
    return int(handle) if isinstance(handle, int) else None


def set_handle(node: Node, handle: int) -> None:
    """Store ``handle`` in ``node.meta["custom"]`` (creating the dict when missing)."""
    custom = node.meta.get(CUSTOM_KEY)
    if not isinstance(custom, dict):
        custom = {}
        node.meta[CUSTOM_KEY] = custom
    custom[NUMERIC_DEBUG_HANDLE_KEY] = int(handle)


def copy_handle(src: Node, dst: Node) -> None:
    """Give ``dst`` (a node that computes ``src``'s value, e.g. a fused kernel) ``src``'s
    ``meta["custom"]`` (handle included); nothing when ``src`` has none."""
    custom = src.meta.get(CUSTOM_KEY)
    if isinstance(custom, dict):
        dst.meta[CUSTOM_KEY] = dict(custom)


def get_quantized_output(node: Node) -> tuple[float, int] | None:
    """(scale, zero point) of ``node``'s integer output as a lowering declared it, or None."""
    value = node.meta.get(QUANTIZED_OUTPUT_KEY)
    if value is None:
        return None
    scale, zero_point = value
    return float(scale), int(zero_point)


def set_quantized_output(node: Node, scale: float, zero_point: int) -> None:
    """Declare that ``node`` outputs integers that dequantize with ``(scale, zero_point)``."""
    node.meta[QUANTIZED_OUTPUT_KEY] = (float(scale), int(zero_point))


def copy_meta(src: Node, dst: Node) -> None:
    """Copy the carried metadata keys of ``src`` onto ``dst`` (only those ``src`` has)."""
    for key in CARRIED_META_KEYS:
        if key in src.meta:
            dst.meta[key] = src.meta[key]


def kept_float_reasons(gm: object, ops: bool = False) -> dict[str, str]:
    """Node name -> why an algorithm kept its output float (``ops``: op name -> why the op
    computes in float), from a prepared / converted GraphModule; empty when none did."""
    meta = getattr(gm, "meta", {}).get(PT2Q_META_KEY, {})
    return dict(meta.get(KEPT_FLOAT_OPS_KEY if ops else KEPT_FLOAT_KEY, {}))
