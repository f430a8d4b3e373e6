"""Per-input-channel scaling of a linear group: which linears share an input, and where the
division of that input goes (the float function is unchanged).

SmoothQuant and AWQ both multiply the weights of the linears reading one activation ``X`` by a
per-input-channel ``s`` and divide ``X`` by it::

    X' = X / s        W' = W * s          (X' W'^T == X W^T)

``place_input_division`` puts ``X / s`` where no quantizer sees the undivided values: folded into
``X``'s ``layer_norm`` when the linears are its only readers (``"layer_norm"``), a copy of that
``layer_norm`` with divided parameters when others read it too (``"layer_norm copy"``), otherwise an
inserted ``mul(X, 1 / s)`` (``"mul"``).
"""

from __future__ import annotations

import torch
from torch.fx import GraphModule, Node

from pt2q.algorithms.params import LINEAR, get_param, set_param, weight_bias

__all__ = ["linear_groups", "is_affine_layer_norm", "place_input_division"]

aten = torch.ops.aten
_LAYER_NORM = frozenset({aten.layer_norm.default})


def linear_groups(gm: GraphModule) -> dict[Node, list[Node]]:
    """Activation node -> the linears (with constant 2-D weights) that read it as input."""
    groups: dict[Node, list[Node]] = {}
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target not in LINEAR:
            continue
        w = weight_bias(node)[0]
        x = node.args[0]
        if w is None or len(w.users) != 1 or not isinstance(x, Node):
            continue
        groups.setdefault(x, []).append(node)
    return groups


def _const(arg: object) -> bool:
    return isinstance(arg, Node) and arg.op == "get_attr"


def _fold_into_layer_norm_copy(
    gm: GraphModule, x: Node, linears: list[Node], s: torch.Tensor, shift: torch.Tensor | None
) -> None:
    """``x``'s linears read a new ``layer_norm`` with ``x``'s parameters divided by ``s`` (its
    bias first less ``shift``)::

    layer_norm(h, w, b) -> linears, add          layer_norm(h, w, b) -> add
                                           ==>    layer_norm(h, w / s, (b - shift) / s) -> linears
    """
    graph = gm.graph
    args = list(x.args)
    for i in (2, 3):
        param = args[i] if i < len(args) else None
        if isinstance(param, Node):
            value = get_param(gm, param).detach()
            if i == 3 and shift is not None:
                value = value - shift
            name = f"_pt2q_scale_{x.name}_{'weight' if i == 2 else 'bias'}"
            gm.register_buffer(name, (value / s).to(torch.float32))
            with graph.inserting_before(x):
                args[i] = graph.get_attr(name)
    with graph.inserting_after(x):
        copy = graph.call_function(x.target, tuple(args), dict(x.kwargs))  # type: ignore[arg-type]
    copy.meta.update(
        {k: v for k, v in x.meta.items() if k in ("val", "nn_module_stack", "stack_trace")}
    )
    for lin in linears:
        lin.replace_input_with(x, copy)


def place_input_division(
    gm: GraphModule,
    x: Node,
    linears: list[Node],
    s: torch.Tensor,
    shift: torch.Tensor | None = None,
) -> str:
    """Divide ``x`` by ``s`` for ``linears`` only; returns where it went (see the module).
    With ``shift`` (a ``layer_norm`` with a constant bias only) the linears read
    ``(x - shift) / s``."""
    ln_w = x.args[2] if x.target in _LAYER_NORM and len(x.args) > 2 else None
    ln_b = x.args[3] if x.target in _LAYER_NORM and len(x.args) > 3 else None
    affine = is_affine_layer_norm(x)
    assert shift is None or (affine and isinstance(ln_b, Node)), f"cannot shift '{x.name}'"
    own_params = isinstance(ln_w, Node) and len(ln_w.users) == 1
    own_params = own_params and (not isinstance(ln_b, Node) or len(ln_b.users) == 1)
    if affine and own_params and set(x.users) == set(linears):
        assert isinstance(ln_w, Node)
        set_param(gm, ln_w, get_param(gm, ln_w).detach() / s)
        if isinstance(ln_b, Node):
            b = get_param(gm, ln_b).detach()
            set_param(gm, ln_b, (b if shift is None else b - shift) / s)
        return "layer_norm"
    if affine:
        _fold_into_layer_norm_copy(gm, x, linears, s, shift)
        return "layer_norm copy"
    name = f"_pt2q_scale_{x.name}"
    gm.register_buffer(name, (1.0 / s).to(torch.float32))
    graph = gm.graph
    with graph.inserting_after(x):
        const = graph.get_attr(name)
    with graph.inserting_after(const):
        mul = graph.call_function(aten.mul.Tensor, (x, const))
    mul.meta.update(
        {k: v for k, v in x.meta.items() if k in ("val", "nn_module_stack", "stack_trace")}
    )
    for lin in linears:
        lin.replace_input_with(x, mul)
    return "mul"


def is_affine_layer_norm(x: Node) -> bool:
    args = x.args
    return (
        x.target in _LAYER_NORM
        and len(args) > 2
        and _const(args[2])
        and (len(args) < 4 or args[3] is None or _const(args[3]))
    )
