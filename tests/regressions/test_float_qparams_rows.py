"""Regression: float-qparams embedding tables are quantized exactly by convert.

``per_channel_affine_float_qparams`` means ``q = clamp(round(w / s + zp))`` with a float ``zp``
per row (``zp = -min / s``), ``w' = (q - zp) * s``: every value within half a step of the float
table. convert used to emit ``quantize_per_channel``, which rounds before adding the zero point
and truncates a float one (up to 1.42 steps off); it now emits one channel group per row.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pt2q import convert_pt2e, prepare_pt2e
from pt2q.observer import default_float_qparams_observer, default_float_qparams_observer_4bit
from pt2q.quantizer import QuantizationConfig, QuantizationSpec
from pt2q.quantizers import EmbeddingQuantizer
from pt2q.tolerances import (
    IN_RANGE_ROUNDING_STEPS,
    QDQ_VS_HAND_REFERENCE_STEPS,
    max_error_in_steps,
)

qd = torch.ops.quantized_decomposed


class _Table(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(40, 24)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.emb(ids)


def _hand(w: torch.Tensor, qmin: int, qmax: int) -> tuple[torch.Tensor, torch.Tensor]:
    """torch's float-qparams formula in float64 from the observer's qparams: (q, dequantized)."""
    lo, hi = w.amin(1).double(), w.amax(1).double()
    scale = ((hi - lo) / (qmax - qmin)).float().double()
    zp = (-lo / scale).float().double()
    q = torch.clamp(torch.round(w.double() / scale[:, None] + zp[:, None]), qmin, qmax)
    return q, (q - zp[:, None]) * scale[:, None]


@pytest.mark.parametrize(
    ("observer", "qmin", "qmax"),
    [(default_float_qparams_observer, 0, 255), (default_float_qparams_observer_4bit, 0, 15)],
    ids=["8bit", "4bit"],
)
def test_float_qparams_table_within_half_a_step(observer: object, qmin: int, qmax: int) -> None:
    torch.manual_seed(0)
    model = _Table().eval()
    ids = torch.arange(40).reshape(4, 10)
    spec = QuantizationSpec(
        dtype=torch.uint8,
        quant_min=qmin,
        quant_max=qmax,
        qscheme=torch.per_channel_affine_float_qparams,
        ch_axis=0,
        observer_or_fake_quant_ctr=observer,
    )
    quantizer = EmbeddingQuantizer(QuantizationConfig(None, None, spec, None))
    prepared = prepare_pt2e(torch.export.export(model, (ids,)).module(), quantizer)
    prepared(ids)
    converted = convert_pt2e(prepared)

    (dq,) = [
        n for n in converted.graph.nodes if n.target == qd.dequantize_per_channel_group.default
    ]
    assert not any(n.target == qd.dequantize_per_channel.default for n in converted.graph.nodes)
    assert dq.args[3:] == (qmin, qmax, torch.uint8, 24, torch.float32)  # one group per row
    w = model.emb.weight.detach()
    q = converted.get_buffer(str(dq.args[0].target))
    scale = converted.get_buffer(str(dq.args[1].target))
    hand_q, hand_w = _hand(w, qmin, qmax)
    assert q.dtype == torch.uint8 and int(q.min()) >= qmin and int(q.max()) <= qmax
    # integers: the hand formula's, up to a float32 rounding tie
    assert int((q.double() - hand_q).abs().max()) <= QDQ_VS_HAND_REFERENCE_STEPS
    with torch.no_grad():
        table = converted(torch.arange(40)[None])[0]
    steps = scale[:, None].double()
    assert max_error_in_steps(table, w, steps) <= IN_RANGE_ROUNDING_STEPS  # was 1.42
    assert max_error_in_steps(table, hand_w, steps) <= QDQ_VS_HAND_REFERENCE_STEPS


def test_float_qparams_on_a_non_table_is_refused_by_name() -> None:
    class _Conv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x)

    from pt2q.quantizer import QuantizationAnnotation
    from pt2q.quantizer.quantizer import Q_ANNOTATION_KEY, Quantizer

    spec = QuantizationSpec(
        dtype=torch.uint8,
        qscheme=torch.per_channel_affine_float_qparams,
        ch_axis=0,
        observer_or_fake_quant_ctr=default_float_qparams_observer,
    )

    class _ConvWeights(Quantizer):
        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            for n in model.graph.nodes:
                if n.target == torch.ops.aten.conv2d.default:
                    n.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(
                        input_qspec_map={n.args[1]: spec}, _annotated=True
                    )
            return model

        def validate(self, model: torch.fx.GraphModule) -> None:
            return

    x = torch.randn(1, 2, 6, 6)
    prepared = prepare_pt2e(torch.export.export(_Conv().eval(), (x,)).module(), _ConvWeights())
    prepared(x)
    with pytest.raises(ValueError, match=r"per_channel_affine_float_qparams.*2-D.*\(4, 2, 3, 3\)"):
        convert_pt2e(prepared)
