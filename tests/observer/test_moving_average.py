"""MovingAverageMinMaxObserver / MovingAveragePerChannelMinMaxObserver: the EMA update."""

from __future__ import annotations

import pytest
import torch

from pt2q.observer import (
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    ObserverNotCalibratedError,
)


def test_first_batch_sets_min_max_then_ema() -> None:
    obs = MovingAverageMinMaxObserver()
    assert obs.averaging_constant == 0.01
    obs(torch.tensor([-1.0, 3.0]))
    assert (obs.min_val.item(), obs.max_val.item()) == (-1.0, 3.0)
    obs(torch.tensor([-11.0, 103.0]))
    # min <- -1 + 0.01 * (-11 - -1) = -1.1 ; max <- 3 + 0.01 * (103 - 3) = 4
    torch.testing.assert_close(obs.min_val, torch.tensor(-1.1))
    torch.testing.assert_close(obs.max_val, torch.tensor(4.0))


def test_custom_averaging_constant_and_qparams() -> None:
    obs = MovingAverageMinMaxObserver.with_args(averaging_constant=0.5)(
        dtype=torch.int8, qscheme=torch.per_tensor_symmetric
    )
    obs(torch.tensor([-2.0, 1.0]))
    obs(torch.tensor([-4.0, 5.0]))
    assert (obs.min_val.item(), obs.max_val.item()) == (-3.0, 3.0)
    scale, zp = obs.calculate_qparams()
    torch.testing.assert_close(scale, torch.tensor(3.0 / 127.5))
    assert zp.item() == 0


def test_per_channel_ema_along_axis() -> None:
    obs = MovingAveragePerChannelMinMaxObserver(ch_axis=1, averaging_constant=0.25)
    x1 = torch.tensor(
        [[0.0, -1.0], [2.0, 1.0]]
    )  # (2, C=2): channel 0 = [0, 2], channel 1 = [-1, 1]
    x2 = torch.tensor([[-4.0, -5.0], [6.0, 9.0]])  # channel 0 = [-4, 6], channel 1 = [-5, 9]
    obs(x1)
    obs(x2)
    # channel 0: min 0 + .25 * (-4 - 0) = -1, max 2 + .25 * (6 - 2) = 3
    # channel 1: min -1 + .25 * (-5 + 1) = -2, max 1 + .25 * (9 - 1) = 3
    torch.testing.assert_close(obs.min_val, torch.tensor([-1.0, -2.0]))
    torch.testing.assert_close(obs.max_val, torch.tensor([3.0, 3.0]))


def test_per_channel_channel_count_change_keeps_state() -> None:
    obs = MovingAveragePerChannelMinMaxObserver(ch_axis=0)
    obs.node_name = "conv_weight"
    obs(torch.ones(3, 2))
    with pytest.raises(ValueError, match="'conv_weight': saw 4 channels along axis 0, expected 3"):
        obs(torch.ones(4, 2))
    torch.testing.assert_close(obs.min_val, torch.ones(3))  # failed batch left no trace


@pytest.mark.parametrize("value", [0.0, -0.1, 1.5], ids=["zero", "negative", "above_one"])
def test_bad_averaging_constant(value: float) -> None:
    with pytest.raises(ValueError, match=f"averaging_constant must be in \\(0, 1\\], got {value}"):
        MovingAverageMinMaxObserver(averaging_constant=value)


@pytest.mark.parametrize(
    "cls", [MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver]
)
def test_uncalibrated_and_empty_batches(cls: type) -> None:
    obs = cls()
    obs.node_name = "relu_3"
    obs(torch.empty(0))
    assert not obs.has_observed
    with pytest.raises(ObserverNotCalibratedError, match="node 'relu_3' has not observed"):
        obs.calculate_qparams()


def test_matches_torch_ao_reference() -> None:
    ao = pytest.importorskip("torch.ao.quantization.observer")
    torch.manual_seed(0)
    ours = MovingAveragePerChannelMinMaxObserver(
        ch_axis=1, dtype=torch.int8, qscheme=torch.per_channel_symmetric
    )
    ref = ao.MovingAveragePerChannelMinMaxObserver(
        ch_axis=1, dtype=torch.qint8, qscheme=torch.per_channel_symmetric
    )
    ours_t = MovingAverageMinMaxObserver()
    ref_t = ao.MovingAverageMinMaxObserver()
    for i in range(5):
        x = torch.randn(4, 3, 5) * (i + 1) + i  # (N, C, L)
        for obs in (ours, ref, ours_t, ref_t):
            obs(x)
    for a, b in ((ours, ref), (ours_t, ref_t)):
        s, z = a.calculate_qparams()
        rs, rz = b.calculate_qparams()
        torch.testing.assert_close(s, rs.reshape(s.shape), rtol=0, atol=0)
        assert torch.equal(z.long(), rz.reshape(z.shape).long())
