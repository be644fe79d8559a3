"""The hand-written batched recurrences: exact gradients (gradcheck in float64) and agreement
with torch's own RNN modules."""

from __future__ import annotations

import pytest
import torch

from sepbench.models.recurrence import elman_scan, gru_scan, lstm_scan


def _rand(*shape: int, scale: float = 1.0) -> torch.Tensor:
    return (torch.randn(*shape, dtype=torch.float64) * scale).requires_grad_()


@pytest.mark.parametrize("nonlinearity", ["tanh", "sigmoid", "relu"])
def test_elman_gradcheck(nonlinearity: str) -> None:
    torch.manual_seed(0)
    xp, w = _rand(2, 5, 3, 4), _rand(2, 4, 4, scale=0.5)
    assert torch.autograd.gradcheck(lambda a, b: elman_scan(a, b, nonlinearity), (xp, w))


def test_lstm_gradcheck() -> None:
    torch.manual_seed(1)
    assert torch.autograd.gradcheck(lstm_scan, (_rand(2, 5, 3, 12), _rand(2, 12, 3)))


def test_gru_gradcheck() -> None:
    torch.manual_seed(2)
    args = (_rand(2, 5, 3, 9), _rand(2, 9, 3), _rand(2, 9))
    assert torch.autograd.gradcheck(gru_scan, args)


def test_kernels_match_torch_modules() -> None:
    torch.manual_seed(3)
    b, t, d, h = 4, 9, 3, 5
    x = torch.randn(b, t, d)
    for cls in (torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU):
        rnn = cls(d, h, batch_first=True)
        ref, _ = rnn(x)
        w_ih, w_hh, b_ih, b_hh = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0
        if cls is torch.nn.GRU:
            xp = (x @ w_ih.T + b_ih).transpose(0, 1)[None]
            out = gru_scan(xp.contiguous(), w_hh[None], b_hh[None])
        else:
            if cls is torch.nn.LSTM:  # i, f, g, o -> i, f, o, g
                perm = torch.cat(
                    [torch.arange(0, 2 * h), torch.arange(3 * h, 4 * h), torch.arange(2 * h, 3 * h)]
                )
                w_ih, w_hh, b_ih, b_hh = w_ih[perm], w_hh[perm], b_ih[perm], b_hh[perm]
            xp = (x @ w_ih.T + b_ih + b_hh).transpose(0, 1)[None].contiguous()
            scan = lstm_scan if cls is torch.nn.LSTM else elman_scan
            out = scan(xp, w_hh[None])
        # out: [1, T, B, H] -> [B, T, H]
        torch.testing.assert_close(out[0].transpose(0, 1), ref, atol=1e-6, rtol=1e-5)
