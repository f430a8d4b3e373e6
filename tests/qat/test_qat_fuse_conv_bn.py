"""QAT simulated conv-bn fusion (pt2q.qat.fuse_conv_bn_qat): numerics against the unfused float
conv-bn in train and eval modes (outputs, BN statistic updates, gradients), graph structure,
annotations carried over."""

from __future__ import annotations

import copy

import pytest
import torch
from conv_bn_models import CASES, OpBn, make_case
from expecttest import TestCase
from torch import nn

from pt2q.export_utils import move_exported_model_to_eval
from pt2q.qat import fuse_conv_bn_qat
from pt2q.quantizer import (
    Q_ANNOTATION_KEY,
    DerivedQuantizationSpec,
    QuantizationAnnotation,
    QuantizationSpec,
)

aten = torch.ops.aten


def _fused(model: nn.Module, x: torch.Tensor) -> torch.fx.GraphModule:
    gm = torch.export.export(copy.deepcopy(model), (x,)).module()
    assert fuse_conv_bn_qat(gm) is True
    return gm  # type: ignore[return-value]


def _bn_buffers(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in m.state_dict().items() if "running" in k or "num_batches" in k}


@pytest.mark.parametrize("name", list(CASES))
def test_train_mode_matches_float(name: str) -> None:
    model, x = make_case(name)
    gm = _fused(model, x)
    ref = copy.deepcopy(model)
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.1)
    opt_gm = torch.optim.SGD(gm.parameters(), lr=0.1)
    for step in range(3):  # forward, BN stats update, backward and an optimizer step, 3 times
        xi = x + 0.1 * step
        out_ref, out_gm = ref(xi), gm(xi)
        # Float re-association only (W*s then /s): default float32 closeness of torch.testing.
        torch.testing.assert_close(out_gm, out_ref)
        for opt, out in ((opt_ref, out_ref), (opt_gm, out_gm)):
            opt.zero_grad()
            out.square().mean().backward()
            opt.step()
        torch.testing.assert_close(_bn_buffers(gm), _bn_buffers(ref))
        params_ref = dict(ref.named_parameters())
        for key, value in gm.named_parameters():
            torch.testing.assert_close(
                value, params_ref[key], msg=f"{name}: {key} after step {step}"
            )


@pytest.mark.parametrize("name", list(CASES))
def test_eval_mode_matches_float(name: str) -> None:
    model, x = make_case(name)
    gm = _fused(model, x)
    gm(x)  # one training forward moves the running stats
    move_exported_model_to_eval(gm)
    ref = copy.deepcopy(model)
    ref(x)
    ref.eval()
    torch.testing.assert_close(gm(x), ref(x))
    torch.testing.assert_close(_bn_buffers(gm), _bn_buffers(ref))


def test_conv_transpose_grouped_is_not_fused() -> None:
    torch.manual_seed(0)
    model = OpBn(nn.ConvTranspose2d(4, 6, 3, groups=2), nn.BatchNorm2d(6)).train()
    gm = torch.export.export(model, (torch.randn(2, 4, 5, 5),)).module()
    assert fuse_conv_bn_qat(gm) is False


def test_second_call_changes_nothing() -> None:
    model, x = make_case("conv2d")
    gm = _fused(model, x)
    assert fuse_conv_bn_qat(gm) is False


def _spec() -> QuantizationSpec:
    from pt2q.observer import MinMaxObserver

    return QuantizationSpec(dtype=torch.int8, observer_or_fake_quant_ctr=MinMaxObserver)


def test_annotations_follow_the_scaled_weight() -> None:
    model, x = make_case("conv2d")
    gm = torch.export.export(model, (x,)).module()
    conv = next(n for n in gm.graph.nodes if n.target == aten.conv2d.default)
    bn = next(iter(conv.users))
    x_node, w_node, b_node = conv.args[:3]
    spec = _spec()
    derived = DerivedQuantizationSpec(
        derived_from=[(x_node, conv), (w_node, conv)],
        derive_qparams_fn=lambda obs: (torch.ones(1), torch.zeros(1, dtype=torch.int32)),
        dtype=torch.int32,
    )
    conv.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(
        input_qspec_map={x_node: spec, w_node: spec, b_node: derived}, _annotated=True
    )
    bn.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(
        input_qspec_map={conv: None}, output_qspec=spec, _annotated=True
    )
    assert fuse_conv_bn_qat(gm)
    scaled_w = conv.args[1]
    assert scaled_w.target == aten.mul.Tensor and scaled_w.args[0] is w_node
    ann = conv.meta[Q_ANNOTATION_KEY]
    # The bias left the conv (it is added after the division), so did its spec.
    assert list(ann.input_qspec_map) == [x_node, scaled_w]
    assert ann.input_qspec_map[scaled_w] is spec
    bn_ann = bn.meta[Q_ANNOTATION_KEY]
    assert list(bn_ann.input_qspec_map) == [bn.args[0]] and bn.args[0].target == aten.add.Tensor
    assert bn_ann.output_qspec is spec


def test_conv_with_quantized_output_is_not_fused() -> None:
    model, x = make_case("conv2d")
    gm = torch.export.export(model, (x,)).module()
    conv = next(n for n in gm.graph.nodes if n.target == aten.conv2d.default)
    conv.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(output_qspec=_spec(), _annotated=True)
    assert fuse_conv_bn_qat(gm) is False


class TestFusedGraph(TestCase):
    def test_golden_conv2d_fused_graph(self) -> None:
        model, x = make_case("conv2d")
        gm = _fused(model, x)
        lines = [
            f"{n.name} = {n.target}{tuple(a.name if isinstance(a, torch.fx.Node) else a for a in n.args)}"
            for n in gm.graph.nodes
            if n.op == "call_function"
        ]
        self.assertExpectedInline(
            "\n".join(lines),
            """\
conv2d_var_eps = aten.add.Tensor('bn_running_var', 1e-05)
conv2d_running_std = aten.sqrt.default('conv2d_var_eps',)
conv2d_scale = aten.div.Tensor('bn_weight', 'conv2d_running_std')
conv2d_weight_scale = aten.reshape.default('conv2d_scale', [-1, 1, 1, 1])
conv2d_scaled_weight = aten.mul.Tensor('op_weight', 'conv2d_weight_scale')
conv2d = aten.conv2d.default('x', 'conv2d_scaled_weight', None, [2, 2])
conv2d_output_scale = aten.reshape.default('conv2d_scale', [1, -1, 1, 1])
conv2d_unscaled = aten.div.Tensor('conv2d', 'conv2d_output_scale')
conv2d_bias = aten.reshape.default('op_bias', [1, -1, 1, 1])
conv2d_biased = aten.add.Tensor('conv2d_unscaled', 'conv2d_bias')
add_ = aten.add_.Tensor('bn_num_batches_tracked', 1)
batch_norm = aten.batch_norm.default('conv2d_biased', 'bn_weight', 'bn_bias', 'bn_running_mean', 'bn_running_var', True, 0.1, 1e-05, False)
relu = aten.relu.default('batch_norm',)""",
        )
