"""Weighted ops (conv, conv_transpose, linear) with their fusable post-op chain.

The chain is found by walking single users from the weighted op (the "anchor")::

    anchor -> [batch_norm (-> getitem 0)]  (QAT only: BN is still in the graph)
           -> [add(anchor, extra)]          (binary_post_ops; anchor's only user)
           -> [unary]                       (binary_unary_post_ops after add, else unary_post_ops)

Annotations written (``A`` = config.input_activation, ``W`` = config.weight, ``B`` = config.bias)::

    anchor:  input_qspec_map {x: A, weight: W, bias: B}
    add:     input_qspec_map {extra: A if quantize_extra_input}
    last:    output_qspec = config.output_activation if observe_output, and the int8-output mark

A post-op that follows the chain but cannot be fused (``linear -> relu -> add``) stays float and
gets a reason naming the order. Under a dynamic config a family with ``dynamic_unsupported``
(or ``grouped_dynamic_ok=False`` for a conv with groups > 1) leaves the op float with a reason.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch.fx import GraphModule, Node

from pt2q.affine.ir_forms import unsupported_weight_reason
from pt2q.quantizer import QuantizationConfig, QuantizationSpec, QuantizationSpecBase
from pt2q.quantizers.annotation import (
    FUSED_INTO_KEY,
    any_annotated,
    is_float_tensor,
    set_float_reason,
    write_annotation,
)
from pt2q.quantizers.config_rules import ConfigRules
from pt2q.quantizers.op_tables import (
    ACTIVATION_OPS,
    ADD_OPS,
    BATCH_NORM_OPS,
    OpOverload,
)

__all__ = ["WeightedFamily", "annotate_weighted"]

_ANY_POST_OP = ACTIVATION_OPS | ADD_OPS


@dataclass(frozen=True)
class WeightedFamily:
    """What one quantizer fuses after one kind of weighted op.

    ``weight_ch_axis`` overrides a per-channel weight spec's axis (1 for conv_transpose).
    ``dynamic_unsupported`` is None (dynamic configs allowed) or the reason dynamic configs
    leave the op float. ``grouped_dynamic_ok`` False leaves grouped convs (groups > 1,
    depthwise included) float under dynamic configs.
    """

    name: str
    anchor_ops: frozenset[OpOverload]
    unary_post_ops: frozenset[OpOverload] = frozenset()
    binary_post_ops: frozenset[OpOverload] = frozenset()
    binary_unary_post_ops: frozenset[OpOverload] = frozenset()
    quantize_extra_input: bool = True
    observe_output: bool = True
    weight_ch_axis: int = 0
    dynamic_unsupported: str | None = None
    grouped_dynamic_ok: bool = True
    backend: str = ""

    def annotate(self, gm: GraphModule, rules: ConfigRules) -> None:
        """This family's annotation step (a recipe entry): ``annotate_weighted(gm, self, rules)``."""
        annotate_weighted(gm, self, rules)


def _single_user(node: Node) -> Node | None:
    return next(iter(node.users)) if len(node.users) == 1 else None


def _bn_output(node: Node) -> Node | None:
    """The value node of a BN consuming ``node`` (its getitem 0 for tuple-returning BN ops)."""
    bn = _single_user(node)
    if bn is None or bn.target not in BATCH_NORM_OPS:
        return None
    if isinstance(bn.meta.get("val"), (tuple, list)):
        out = _single_user(bn)
        getitem_ok = out is not None and out.args[1:] == (0,)
        return out if getitem_ok else None
    return bn


def _extra_input(add: Node, cur: Node, family: WeightedFamily) -> Node | None:
    """The other operand of ``add`` if ``cur`` may fuse it, else None.

    When both operands are fusable anchors, the first one wins (as torchao does).
    """
    if len(add.args) != 2 or add.kwargs.get("alpha", 1) != 1:
        return None
    a, b = add.args
    other = b if a is cur else a if b is cur else None
    if other is None or other is cur or not is_float_tensor(other):
        return None
    if other.meta["val"].shape != cur.meta["val"].shape:
        return None  # broadcasting add is not a fusable post-op (x86 sum/add needs same shape)
    if b is cur and a is other and a.target in family.anchor_ops and len(a.users) == 1:
        if not any_annotated([a]):
            return None  # args[0] is also an anchor: it takes this add
    return other


def _match_chain(
    anchor: Node, family: WeightedFamily, is_qat: bool
) -> tuple[list[Node], Node | None]:
    """(chain nodes from anchor to the pattern's last node, the add's extra input or None)."""
    chain = [anchor]
    cur = anchor
    bn_out = _bn_output(anchor) if is_qat else None
    if bn_out is not None:
        bn = _single_user(anchor)  # not None: _bn_output found it
        if bn is not None and bn_out is not bn:
            chain.append(bn)  # the tuple-returning BN node before its getitem
        chain.append(bn_out)
        cur = bn_out
    extra = None
    user = _single_user(cur)
    if user is not None and user.target in family.binary_post_ops:
        extra = _extra_input(user, cur, family)
        if extra is not None and not any_annotated([user]):
            chain.append(user)
            cur = user
            after = _single_user(cur)
            if after is not None and after.target in family.binary_unary_post_ops:
                if not any_annotated([after]):
                    chain.append(after)
            return chain, extra
        extra = None
    if user is not None and user.target in family.unary_post_ops and not any_annotated([user]):
        chain.append(user)
    return chain, extra


def _weight_spec(config: QuantizationConfig, family: WeightedFamily) -> QuantizationSpecBase | None:
    spec = config.weight
    if isinstance(spec, QuantizationSpec) and spec.ch_axis is not None:
        if spec.qscheme in (torch.per_channel_symmetric, torch.per_channel_affine):
            if spec.ch_axis != family.weight_ch_axis:
                spec = dataclasses.replace(spec, ch_axis=family.weight_ch_axis)
    return spec


def _is_grouped(conv: Node) -> bool:
    """groups > 1 (a depthwise conv is the case groups == in_channels)."""
    groups = conv.args[6] if len(conv.args) > 6 else conv.kwargs.get("groups", 1)
    return isinstance(groups, int) and groups > 1


def _why_not_fused(last: Node, chain: list[Node], family: WeightedFamily) -> None:
    """Give each post-op-like user of the pattern's last node a float reason."""
    for user in last.users:
        if user.target in _ANY_POST_OP and user not in chain:
            order = " -> ".join(str(n.target).split(".")[-2] for n in [*chain, user])
            set_float_reason(
                user,
                f"unfusable post-op order {order}: {family.backend} fuses only "
                f"{family.name} -> [add -> [relu]] or {family.name} -> unary; left float",
            )


def annotate_weighted(gm: GraphModule, family: WeightedFamily, rules: ConfigRules) -> None:
    """Annotate every ``family`` anchor in ``gm`` with its longest fusable post-op chain."""
    for anchor in list(gm.graph.nodes):
        if anchor.op != "call_function" or anchor.target not in family.anchor_ops:
            continue
        if any_annotated([anchor]):
            continue
        resolved = rules.resolve(anchor)
        config = resolved.config
        if config is None:
            set_float_reason(anchor, f"config is None ({resolved.rule})")
            continue
        act = config.input_activation
        dynamic = act is not None and act.is_dynamic
        if dynamic and family.dynamic_unsupported is not None:
            set_float_reason(anchor, family.dynamic_unsupported)
            continue
        if dynamic and not family.grouped_dynamic_ok and _is_grouped(anchor):
            set_float_reason(anchor, f"{family.backend}: dynamic quantization of grouped conv")
            continue
        x, weight = anchor.args[0], anchor.args[1]
        if not is_float_tensor(x) or not isinstance(weight, Node):
            set_float_reason(anchor, "input is not a float tensor or weight is not a tensor node")
            continue
        w_val = weight.meta.get("val")
        reason = unsupported_weight_reason(config.weight, None if w_val is None else w_val.shape)
        if reason is not None:
            set_float_reason(anchor, reason)
            continue
        # Dynamic or weight-only: the output is float, so post-ops run in float after the
        # kernel (no fusion).
        float_out = dynamic or act is None
        chain, extra = (
            ([anchor], None) if float_out else _match_chain(anchor, family, config.is_qat)
        )
        bias = anchor.args[2] if len(anchor.args) > 2 else None
        input_map: dict[Node, QuantizationSpecBase | None] = {
            x: act,
            weight: _weight_spec(config, family),
        }
        if isinstance(bias, Node):
            input_map[bias] = config.bias
        last = chain[-1]
        out_spec = config.output_activation if family.observe_output and not dynamic else None
        write_annotation(
            anchor, input_map, out_spec if last is anchor else None, int8_output=last is anchor
        )
        for node in chain[1:]:
            node_inputs: dict[Node, QuantizationSpecBase | None] = {}
            if extra is not None and node.target in family.binary_post_ops:
                node_inputs[extra] = act if family.quantize_extra_input else None
            is_last = node is last
            write_annotation(node, node_inputs, out_spec if is_last else None, int8_output=is_last)
            node.meta[FUSED_INTO_KEY] = anchor.name
        _why_not_fused(last, chain, family)
