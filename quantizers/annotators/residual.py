"""Keep the residual stream float: an add whose value only reaches normalization ops.

::

    post-LN (BERT)                          pre-LN (GPT-2, ViT)
    x -----------------+                    h ------------------+
    dense(..) -------- add -> layer_norm    attn(ln_1(h)) ----- add -> ln_2, add -> ... -> ln_f

Transformers' residual stream carries a few outlier channels 50-200x the typical value (they
grow through the layers and normalization scales them back). An int8 per-tensor range on such an
add is set by the outliers, so every ordinary channel keeps a handful of levels; and nothing
int8 reads the result: the normalization after it (``layer_norm``, ``rms_norm``) runs in float.
all-MiniLM-L6-v2 with XNNPACKQuantizer per-channel: sentence cosine 0.833 with the residual adds
int8, higher with them float (``bench/accuracy.py --models minilm``).

``find_residual_adds`` returns every add whose users are all normalization ops or other such
adds (a pre-LN chain), with at least one normalization at the end. ``keep_residual_adds_float``
claims them with an empty annotation and a float reason before the binary annotators run, unless
the quantizer's ``set_residual_add_quantization(True)`` opts in. Adds that feed a conv, a
linear or a relu (ResNet, ConvNeXt blocks) are not residual adds here and stay quantized.
"""

from __future__ import annotations

import torch
from torch.fx import GraphModule, Node

from pt2q.quantizers.annotation import (
    FLOAT_REASON_KEY,
    is_annotated,
    is_float_tensor,
    write_annotation,
)
from pt2q.quantizers.op_tables import ADD_OPS, OpOverload

__all__ = ["NORM_OPS", "find_residual_adds", "keep_residual_adds_float"]

aten = torch.ops.aten

# Normalizations that run in float in every pt2q quantizer and read the residual stream.
NORM_OPS: frozenset[OpOverload] = frozenset(
    {aten.layer_norm.default, aten.native_layer_norm.default, aten.rms_norm.default}
)


def find_residual_adds(gm: GraphModule) -> dict[Node, Node]:
    """Every residual add of ``gm`` (see module doc) -> a normalization reading it (a direct
    user when there is one, else the one its chain of residual adds reaches)."""
    found: dict[Node, Node] = {}
    for node in reversed(gm.graph.nodes):  # users before producers
        if node.op != "call_function" or node.target not in ADD_OPS or not node.users:
            continue
        operands = [a for a in node.args[:2] if isinstance(a, Node)]
        if len(operands) != 2 or not all(is_float_tensor(a) for a in operands):
            continue
        norms = [u for u in node.users if u.op == "call_function" and u.target in NORM_OPS]
        chained = [found[u] for u in node.users if u in found]
        if norms + chained and len(norms) + len(chained) == len(node.users):
            found[node] = (norms + chained)[0]
    return found


def keep_residual_adds_float(gm: GraphModule) -> int:
    """Claim every unannotated residual add (see module doc) with an empty annotation and a float
    reason; returns how many were claimed."""
    claimed = 0
    for node, norm in find_residual_adds(gm).items():
        if is_annotated(node):
            continue
        write_annotation(node)
        node.meta[FLOAT_REASON_KEY] = (
            f"residual add read only by normalization ('{norm.name}'): an int8 range would be "
            "set by the residual stream's outlier channels and nothing int8 reads it; "
            "set_residual_add_quantization(True) forces it"
        )
        claimed += 1
    return claimed
