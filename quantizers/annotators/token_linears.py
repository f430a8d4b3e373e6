"""x86 recipe: a static linear with no fused activation gets a per-token dynamic input.

::

    static (torchao)                              here
    x -> q -> dq (one scale for every token)      x -> choose_qparams_per_token -> q -> dq
         -> linear -> float output                     -> linear -> float output  (llm_config("8da8w"))

X86InductorQuantizer leaves a linear's output float unless a fused post-op chain ends in int8,
so the only int8 rounding of such a linear is its input's, and a static per-tensor scale over a
transformer's token rows (layer_norm outputs with offset channels, GELU outputs, attention
context) rounds every token on the range of the widest: all-MiniLM-L6-v2 (real weights) plain
flow, sentence cosine 0.9935 static, 0.9963 with these linears per-token dynamic
(``bench/accuracy.py``). The x86 lowering runs them as the same prepacked oneDNN int8 GEMM with
the per-token scale and zero point applied after it (``lowering/x86/llm/integer.py``).

Two kinds keep their static input, for speed:

* a linear with a fused unary post-op (ReLU, GELU, ...): oneDNN applies the post-op inside the
  int8 GEMM, while a per-token scale comes after it and would move the activation out to
  Inductor (MiniLM lowered, 8 x 32 tokens, interleaved in one process: 10.8 ms with every
  linear per-token, 8.8 ms with the GELU-fused ones static, 7.1 ms in torchao's static form);
* a linear reading, through pools / flatten / views, the uint8 output of a conv / linear pattern
  that does not end in GELU (a CNN head after its convs, the next layer of a ReLU MLP): the
  producer's fused requantize hands it uint8 directly. With those per-token too, the bench's
  MLP ran 0.93x torchao's and its CNN 0.79x ExecuTorch's (1.12x / 0.99x before). A GELU output
  is not kept: MiniLM's FFN down-projections static give 0.9939 instead of 0.9963.

Not under QAT or a dynamic config; ``X86InductorQuantizer.set_token_dynamic_linears(False)``
keeps torchao's form. The coverage report shows the change as the node's note.
"""

from __future__ import annotations

import torch
from torch.fx import GraphModule, Node

from pt2q.quantizer import Q_ANNOTATION_KEY, QuantizationSpec
from pt2q.quantizers.annotation import (
    DYNAMIC_NOTE_KEY,
    FUSED_INTO_KEY,
    has_int8_output,
    is_annotated,
)
from pt2q.quantizers.op_tables import OpOverload, aten

GELU_OPS = frozenset({aten.gelu.default})

__all__ = ["make_linears_token_dynamic"]

_NOTE = (
    "per-token dynamic input (one scale per token row instead of one static scale for all): "
    "its output is float, it has no fused activation and no int8 chain feeds it; "
    "set_token_dynamic_linears(False) keeps it static"
)


def _has_fused_unary(node: Node, unary_post_ops: frozenset[OpOverload]) -> bool:
    return any(
        u.meta.get(FUSED_INTO_KEY) == node.name and u.target in unary_post_ops for u in node.users
    )


def _reads_int8_chain(x: Node, pass_through: frozenset[OpOverload]) -> bool:
    """Whether ``x``, looking back through ``pass_through`` ops (pools, flatten, view), is the
    uint8-capable output of a conv / linear pattern that does not end in GELU."""
    while x.op == "call_function" and x.target in pass_through and isinstance(x.args[0], Node):
        x = x.args[0]
    return has_int8_output(x) and x.target not in GELU_OPS


def make_linears_token_dynamic(
    gm: GraphModule,
    linear_ops: frozenset[OpOverload],
    unary_post_ops: frozenset[OpOverload],
    int8_pass_through: frozenset[OpOverload],
    dynamic_activation: QuantizationSpec,
) -> int:
    """Give each annotated linear with a static input spec, symmetric per-channel weights, no
    fused ``unary_post_ops`` and no int8 chain behind it the ``dynamic_activation`` input
    (module doc); returns how many changed."""
    changed = 0
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target not in linear_ops or not is_annotated(node):
            continue
        x, weight = node.args[0], node.args[1]
        specs = node.meta[Q_ANNOTATION_KEY].input_qspec_map
        act, w = specs.get(x), specs.get(weight)
        if not isinstance(act, QuantizationSpec) or act.is_dynamic:
            continue
        if not isinstance(w, QuantizationSpec) or w.qscheme != torch.per_channel_symmetric:
            continue  # the lowering's per-token GEMM takes symmetric per-channel weights
        if _has_fused_unary(node, unary_post_ops) or _reads_int8_chain(x, int8_pass_through):
            continue
        node.meta[Q_ANNOTATION_KEY].input_qspec_map[x] = dynamic_activation
        node.meta[DYNAMIC_NOTE_KEY] = _NOTE
        changed += 1
    return changed
