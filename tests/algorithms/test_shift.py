"""pt2q.algorithms.shift: layer_norm outputs centred into the linears' biases (float-equivalent),
and what it buys per-token activation quantization."""

from __future__ import annotations

import copy

import torch
from algorithm_models import OutlierBlock, exported, token_batches

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.algorithms import shift
from pt2q.algorithms.params import get_param, weight_bias
from pt2q.quantizers import XNNPACKQuantizer, llm_config

FP32_REL = 1e-5  # an equivalent-float rewrite: fp32 rounding only


def _offset_block() -> OutlierBlock:
    """OutlierBlock whose normalization outputs carry offset channels shared by every token
    (the 50x / 40x channels of its weights stay): what transformers' layer_norms look like."""
    torch.manual_seed(0)
    model = OutlierBlock().eval()
    with torch.no_grad():
        model.ln.weight[:2] = 1.0
        model.ln.bias[:3] = torch.tensor([30.0, -25.0, 12.0])
        model.ln2.bias[5] = -20.0
    return model


def test_shift_centres_layer_norm_outputs_into_the_biases() -> None:
    model = _offset_block()
    batches = token_batches()
    gm = exported(model, batches[0])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    groups = shift(gm, batches[:3])
    by_act = {g.activation: g for g in groups}
    assert by_act["layer_norm"].linears == ("linear", "linear_1")
    assert by_act["layer_norm"].placed == "layer_norm"  # ln read only by q and k
    assert by_act["layer_norm_1"].placed == "layer_norm copy"  # ln2 also feeds the residual
    with torch.no_grad():
        assert float((gm(batches[3]) - model(batches[3])).abs().max()) < FP32_REL * float(
            model(batches[3]).abs().max()
        )
        # what q reads now is centred: its channel medians are ~0 where they were 30 / -25 / 12
        nodes = {n.name: n for n in gm.graph.nodes}
        ln = nodes["linear"].args[0]
        w, b = (get_param(gm, p) for p in ln.args[2:4])
        h = torch.nn.functional.layer_norm(batches[3], (32,), w, b)
        assert float(h.reshape(-1, 32).median(0).values.abs().max()) < 0.5
        # the shift went into the float biases: b' = b + W z
        q_bias = get_param(gm, weight_bias(nodes["linear"])[1])
        z = model.ln.bias - b
        torch.testing.assert_close(q_bias, model.q.bias + model.q.weight @ z, rtol=1e-5, atol=1e-4)
    for k, v in model.state_dict().items():  # the user's model is untouched
        assert torch.equal(v, before[k]), k


def test_shift_sharpens_per_token_activation_quantization() -> None:
    """8da8w quantizes each token's activation over its own range: offset channels spend it."""
    model = _offset_block()
    batches = token_batches()

    def sqnr(gm: torch.fx.GraphModule) -> float:
        prepared = prepare_pt2e(gm, XNNPACKQuantizer().set_global(llm_config("8da8w")))
        with torch.no_grad():
            prepared(batches[0])
            ref, out = model(batches[3]), convert_pt2e(prepared)(batches[3])
        return float(10 * torch.log10(ref.pow(2).mean() / (out - ref).pow(2).mean()))

    gm = exported(model, batches[0])
    shifted = copy.deepcopy(gm)
    assert shift(shifted, batches[:3])
    plain_db, shifted_db = sqnr(gm), sqnr(shifted)
    assert shifted_db > plain_db + 10.0, (plain_db, shifted_db)  # measured 35.4 -> 55.9 dB


def test_shift_skips_what_it_cannot_fold() -> None:
    """No layer_norm bias to move into (or a linear without bias): left alone."""
    model = _offset_block()
    model.q.bias = None
    model.ln2 = torch.nn.LayerNorm(32, bias=False)
    batches = token_batches()
    gm = exported(model, batches[0])
    assert shift(gm, batches[:3]) == []
