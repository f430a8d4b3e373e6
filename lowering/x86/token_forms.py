"""Per-token (8da8w) linears without VNNI: full-range tokens through the saturating kernel, or
7-bit tokens, by measured error.

X86InductorQuantizer's per-token linears (and ``llm_config("8da8w")``) run as oneDNN's qlinear on
uint8 tokens (``llm/integer.py``). Per-token quantization puts every row's minimum at 0 and its
maximum at 255, so without VNNI (``vpmaddubsw``: pairs of u8 x s8 products in a saturating int16)
the full-range tokens can saturate like static full-range activations; ``tokens.token_u7``'s
7-bit tokens are exact there and one bit coarser. As for the static groups
(``activation_forms.py``, whose noise model and rule this reuses), each linear gets the form that
loses less SQNR at its dot products on the example inputs, float when both lose more than
``ISA_ADAPTED_NODE_MAX_SQNR_LOSS_DB``. VNNI / AMX: nothing to choose.
"""

from __future__ import annotations

import torch
from torch.fx import GraphModule

from pt2q.lowering.x86.activation_forms import (
    _MAX_ROWS,
    _decide,
    _form_noise,
    _Noise,
    _pad4,
    record_values,
)
from pt2q.lowering.x86.isa import CpuInt8Isa
from pt2q.lowering.x86.llm.integer import per_token_linears
from pt2q.lowering.x86.llm.tokens import token_u7, token_u8

__all__ = ["choose_token_forms"]


def _token_errors(x: torch.Tensor, w: torch.Tensor) -> _Noise:
    """The noise of a per-token (8da8w) linear's dot products on float rows ``x`` (R, K) with
    int8 weights ``w`` (N, K), in each form: ``token_u8``'s full-range tokens through the
    saturating kernel, ``token_u7``'s 7-bit ones (exact there, one bit coarser)."""
    idx = torch.linspace(0, x.shape[0] - 1, min(_MAX_ROWS, x.shape[0])).long()
    xr = x[idx].float()
    a8, s8, z8 = token_u8(xr)  # on the rows as they are: padding would move their min / max
    a7, s7, z7 = token_u7(xr)
    full = (_pad4(a8), s8, z8.double() + 128)  # the uint8 tokens' zero points, (R, 1)
    return _form_noise(_pad4(xr), _pad4(w), full, (_pad4(a7), s7, z7.double() + 128))


def choose_token_forms(
    gm: GraphModule, isa: CpuInt8Isa, example_inputs: tuple[object, ...]
) -> dict[str, tuple[str, str]]:
    """{linear name: (form, reason)} for the 8da8w (per-token dynamic) linears of ``gm``
    without VNNI: their uint8 tokens span [0, 255] in every row, so the saturating kernel or the
    7-bit tokens, whichever measured closer on the example inputs, float when both lose more
    than ``ISA_ADAPTED_NODE_MAX_SQNR_LOSS_DB`` (the static groups' rule). Empty on VNNI / AMX."""
    if isa.exact_u8s8:
        return {}
    linears = per_token_linears(gm)
    if not linears:
        return {}
    values = record_values(gm, example_inputs, {lin.tokens.source for lin in linears.values()})  # type: ignore[union-attr]
    forms = {}
    for node, lin in linears.items():
        x = values[lin.tokens.source]  # type: ignore[union-attr]
        assert isinstance(x, torch.Tensor)
        form, why = _decide(_token_errors(x.reshape(-1, x.shape[-1]), lin.weight.q))
        forms[node.name] = (form, f"no VNNI ({isa.describe()}), uint8 tokens -> {form}: {why}")
    return forms
