"""pt2q.algorithms.awq: activation-aware scaling + clipping for per-group (LLM scheme) weights.

A pre-norm block with a few large input channels (the outliers of real transformer activations):
``layer_norm`` read by q/k/v-like linears and by a residual add, then gelu -> linear.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.algorithms.awq import awq
from pt2q.algorithms.gptq import gptq
from pt2q.quantizers import XNNPACKQuantizer, llm_config

aten = torch.ops.aten


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(64)
        self.q, self.k, self.v = nn.Linear(64, 64), nn.Linear(64, 64), nn.Linear(64, 64)
        self.up = nn.Linear(64, 128)
        self.down = nn.Linear(128, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        h = x + self.q(h) * torch.sigmoid(self.k(h)) + self.v(h)
        return self.down(nn.functional.gelu(self.up(h)))


def _setup() -> tuple[nn.Module, list[torch.Tensor], torch.Tensor]:
    torch.manual_seed(0)
    model = _Block().eval()
    with torch.no_grad():  # outlier channels, as in trained transformers
        model.norm.weight.copy_(1.0 + 19.0 * (torch.arange(64) % 16 == 3))
        model.up.bias.copy_(4.0 * (torch.arange(128) % 16 == 5))
    data = [torch.randn(4, 16, 64) for _ in range(5)]
    return model, data[:4], data[4]


def _quantized(
    model: nn.Module, scheme: str, calibration: list[torch.Tensor], use_awq: bool
) -> tuple[torch.fx.GraphModule, list]:
    gm = torch.export.export(copy.deepcopy(model), (calibration[0],)).module()
    config = llm_config(scheme, 32)
    assert config.weight is not None
    groups = awq(gm, calibration, config.weight) if use_awq else []
    prepared = prepare_pt2e(gm, XNNPACKQuantizer().set_global(config))
    with torch.no_grad():
        for batch in calibration:
            prepared(batch)
    return convert_pt2e(prepared), groups


def _qd_ops(gm: torch.fx.GraphModule) -> list[str]:
    return [str(n.target) for n in gm.graph.nodes if "quantized_decomposed" in str(n.target)]


def _sqnr(ref: torch.Tensor, out: torch.Tensor) -> float:
    return float(10 * torch.log10(ref.pow(2).mean() / (out - ref).pow(2).mean()))


@pytest.mark.parametrize("scheme", ["int4wo", "8da4w"])
def test_awq_beats_min_max_on_held_out_inputs(scheme: str) -> None:
    model, calibration, test = _setup()
    user_weights = {n: p.clone() for n, p in model.named_parameters()}
    plain, _ = _quantized(model, scheme, calibration, use_awq=False)
    improved, groups = _quantized(model, scheme, calibration, use_awq=True)
    with torch.no_grad():
        ref = model(test)
        plain_db, awq_db = _sqnr(ref, plain(test)), _sqnr(ref, improved(test))
    # measured: int4wo 20.2 -> 21.5 dB, 8da4w 19.4 -> 20.2 dB (held-out batch)
    assert awq_db > plain_db + 0.5, (plain_db, awq_db)
    assert all(g.error_ratio < 1.0 for g in groups) and len(groups) >= 2
    for name, p in model.named_parameters():  # the user's model is untouched
        assert torch.equal(p, user_weights[name])
    # the plain flow's IR (same q/dq ops, int4 values in 8-bit storage) plus float muls
    assert sorted(_qd_ops(improved)) == sorted(_qd_ops(plain))
    muls = [n for n in improved.graph.nodes if n.target == aten.mul.Tensor]
    assert len(muls) == len([n for n in plain.graph.nodes if n.target == aten.mul.Tensor]) + sum(
        g.placed == "mul" for g in groups
    )


def test_dynamic_activation_noise_in_the_objective() -> None:
    """8da8w: with int8 weights the per-token activation rounding dominates; AWQ told about the
    dynamic input_activation picks larger alphas (flatter X / s) and wins on held-out inputs."""
    model, calibration, test = _setup()
    config = llm_config("8da8w", 32)
    assert config.weight is not None and config.input_activation is not None
    sqnr = {}
    for aware in (False, True):
        gm = torch.export.export(copy.deepcopy(model), (calibration[0],)).module()
        activation = config.input_activation if aware else None
        awq(gm, calibration, config.weight, activation=activation)
        prepared = prepare_pt2e(gm, XNNPACKQuantizer().set_global(config))
        with torch.no_grad():
            for batch in calibration:
                prepared(batch)
            sqnr[aware] = _sqnr(model(test), convert_pt2e(prepared)(test))
    # measured: 40.4 dB weights only -> 41.4 dB with the activation's noise
    assert sqnr[True] > sqnr[False] + 0.5, sqnr


def test_gptq_after_awq_beats_awq() -> None:
    """The 4-bit default flow of bench/llm.py: awq on the float graph, then gptq on the
    calibrated prepared model chooses the integers on AWQ's scaled, clipped weights."""
    model, calibration, test = _setup()
    config = llm_config("8da4w", 32)
    assert config.weight is not None
    sqnr = {}
    for then_gptq in (False, True):
        gm = torch.export.export(copy.deepcopy(model), (calibration[0],)).module()
        awq(gm, calibration, config.weight, activation=config.input_activation)
        prepared = prepare_pt2e(gm, XNNPACKQuantizer().set_global(config))
        with torch.no_grad():
            for batch in calibration:
                prepared(batch)
            changed = gptq(prepared, calibration) if then_gptq else []
            sqnr[then_gptq] = _sqnr(model(test), convert_pt2e(prepared)(test))
        assert len(changed) == (5 if then_gptq else 0)
    # measured: 20.2 dB awq -> 23.9 dB awq + gptq (held-out batch)
    assert sqnr[True] > sqnr[False] + 2.0, sqnr


def test_rejects_a_static_activation_spec() -> None:
    from pt2q.quantizers import get_symmetric_quantization_config

    model, calibration, _ = _setup()
    gm = torch.export.export(copy.deepcopy(model), (calibration[0],)).module()
    weight = llm_config("8da4w", 32).weight
    static = get_symmetric_quantization_config().input_activation
    assert weight is not None and static is not None
    with pytest.raises(ValueError, match="dynamic spec"):
        awq(gm, calibration, weight, activation=static)


def test_scaling_alone_is_float_equivalent() -> None:
    """Without clipping (shrink=(1.0,)) AWQ only moves scale between X and W: same function."""
    model, calibration, test = _setup()
    gm = torch.export.export(copy.deepcopy(model), (calibration[0],)).module()
    config = llm_config("int4wo", 32)
    assert config.weight is not None
    groups = awq(gm, calibration, config.weight, shrink=(1.0,))
    assert {g.placed for g in groups} >= {"mul"} and any(g.alpha > 0 for g in groups)
    with torch.no_grad():
        torch.testing.assert_close(gm(test), model(test), rtol=1e-4, atol=1e-4)


def test_rejects_a_non_affine_weight_spec() -> None:
    from pt2q.quantizers import get_symmetric_quantization_config

    model, calibration, _ = _setup()
    gm = torch.export.export(copy.deepcopy(model), (calibration[0],)).module()
    spec = get_symmetric_quantization_config().weight
    assert spec is not None
    with pytest.raises(ValueError, match="not an affine observer"):
        awq(gm, calibration, spec)


@pytest.mark.parametrize("scheme", ["int4wo", "8da4w"])
def test_x86_llm_lowering_takes_every_awq_linear(scheme: str) -> None:
    """The inserted muls sit in front of the linears' activation chains: the LLM lowering
    still matches all five linears, and matches the reference program."""
    from pt2q.lowering.x86.llm import lower_llm_linears
    from pt2q.qdq import read_report

    model, calibration, test = _setup()
    ref, groups = _quantized(model, scheme, calibration, use_awq=True)
    assert any(g.placed == "mul" for g in groups)
    low = lower_llm_linears(ref, (test,))
    report = read_report(low)
    assert sum(report.kernel_counts().values()) == 5 and not report.not_lowered
    with torch.no_grad():
        assert _sqnr(ref(test), low(test)) > 40.0
