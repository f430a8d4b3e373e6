"""A static linear whose int8 output only float ops read becomes a per-token dynamic linear.

::

    static (torchao)                               here
    x_dq -> linear -> q -> dq -> gelu / matmul     x -> choose_qparams_per_token -> q -> dq ->
                        (int8 output, read           linear -> gelu / matmul / residual add
                         straight back as float)     (float output, as llm_config("8da8w"))

Under XNNPACKQuantizer every static linear ends in an int8 quantize: ExecuTorch's XNNPACK
partitioner delegates a static int8 GEMM only with one (``gemm_configs.py``,
``_get_output_deps``). In a transformer nothing int8 reads those outputs: Q/K/V go to the float
attention matmuls, the FFN's first linear to a float GELU, the projections back into the float
residual stream (``residual.py``). The int8 output is a rounding step, 50-200x outlier channels
included, that buys no int8 consumer; a dynamic linear (XNNPACK's QD8 GEMM: activations quantized
per row at run time, the same per-channel int8 weights) has a float output and is delegated as
such. all-MiniLM-L6-v2, XNNPACKQuantizer per-channel, plain flow: sentence cosine 0.960 -> 0.9987
(``bench/accuracy.py``).

``make_float_read_linears_dynamic`` runs after every other annotator and before the pass-through
sharing: a linear qualifies when its annotation observes its own output (no fused post-op), its
weight is per-channel (XNNPACK has no dynamic GEMM with per-tensor weights) and every op reading
its output, looking through the pass-throughs that would share its observer (view, permute...),
is a call the quantizer left float (no input spec on that edge). A linear read by the graph's
output keeps torchao's static form. The coverage report shows the change as the node's note.
"""

from __future__ import annotations

import torch
from torch.fx import GraphModule, Node

from pt2q.qdq.meta import INT8_OUTPUT_KEY
from pt2q.quantizer import Q_ANNOTATION_KEY, QuantizationAnnotation, QuantizationSpec
from pt2q.quantizers.annotation import (
    DYNAMIC_NOTE_KEY,
    is_annotated,
    readers_through,
    reads_int8,
)
from pt2q.quantizers.op_tables import OpOverload

__all__ = ["make_float_read_linears_dynamic"]

_PER_CHANNEL = (torch.per_channel_symmetric, torch.per_channel_affine)


def _float_readers_only(node: Node, pass_through: frozenset[OpOverload]) -> bool:
    """Whether ``node`` has readers and each is a call reading it in float (not the graph's
    output, not an int8 edge)."""
    readers = readers_through(node, pass_through)
    return bool(readers) and all(
        r.op == "call_function" and not reads_int8(r, value) for r, value in readers
    )


def _static_per_channel(ann: QuantizationAnnotation, x: Node, weight: Node) -> bool:
    act, w = ann.input_qspec_map.get(x), ann.input_qspec_map.get(weight)
    return (
        isinstance(act, QuantizationSpec)
        and not act.is_dynamic
        and isinstance(w, QuantizationSpec)
        and w.qscheme in _PER_CHANNEL
        and ann.output_qspec is not None
    )


def make_float_read_linears_dynamic(
    gm: GraphModule,
    linear_ops: frozenset[OpOverload],
    pass_through: frozenset[OpOverload],
    dynamic_activation: QuantizationSpec,
) -> int:
    """Re-annotate each qualifying static linear (module doc) with ``dynamic_activation`` on its
    input and no output spec; returns how many changed."""
    changed = 0
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target not in linear_ops or not is_annotated(node):
            continue
        ann = node.meta[Q_ANNOTATION_KEY]
        x, weight = node.args[0], node.args[1]
        if not (isinstance(x, Node) and isinstance(weight, Node)):
            continue
        if not _static_per_channel(ann, x, weight) or not _float_readers_only(node, pass_through):
            continue
        ann.input_qspec_map[x] = dynamic_activation
        ann.output_qspec = None
        node.meta.pop(INT8_OUTPUT_KEY, None)
        node.meta[DYNAMIC_NOTE_KEY] = (
            "only float ops read its output: per-token dynamic input, float output (a static "
            "int8 output would be dequantized at once); set_float_read_linear_dynamic(False) "
            "keeps it static"
        )
        changed += 1
    return changed
