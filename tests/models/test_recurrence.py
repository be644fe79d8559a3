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
    xp, w = _rand(5, 2, 4, 3), _rand(2, 4, 4, scale=0.5)
    assert torch.autograd.gradcheck(lambda a, b: elman_scan(a, b, nonlinearity), (xp, w))


def test_lstm_gradcheck() -> None:
    torch.manual_seed(1)
    assert torch.autograd.gradcheck(
        lstm_scan, (_rand(5, 2, 12, 3), _rand(2, 12, 3)), fast_mode=True
    )


def test_gru_gradcheck() -> None:
    torch.manual_seed(2)
    args = (_rand(5, 2, 9, 3), _rand(2, 9, 3), _rand(2, 9))
    assert torch.autograd.gradcheck(gru_scan, args, fast_mode=True)


def test_kernels_match_torch_modules() -> None:
    torch.manual_seed(3)
    b, t, d, h = 4, 9, 3, 5
    x = torch.randn(b, t, d)
    for cls in (torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU):
        rnn = cls(d, h, batch_first=True)
        ref, _ = rnn(x)
        w_ih, w_hh, b_ih, b_hh = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0
        if cls is torch.nn.GRU:
            xp = (x @ w_ih.T + b_ih).permute(1, 2, 0)[:, None]
            out = gru_scan(xp.contiguous(), w_hh[None], b_hh[None])
        else:
            if cls is torch.nn.LSTM:  # i, f, g, o -> i, f, o, g
                perm = torch.cat(
                    [torch.arange(0, 2 * h), torch.arange(3 * h, 4 * h), torch.arange(2 * h, 3 * h)]
                )
                w_ih, w_hh, b_ih, b_hh = w_ih[perm], w_hh[perm], b_ih[perm], b_hh[perm]
            xp = (x @ w_ih.T + b_ih + b_hh).permute(1, 2, 0)[:, None]
            scan = lstm_scan if cls is torch.nn.LSTM else elman_scan
            out = scan(xp, w_hh[None])
        # out: [T, 1, H, B] -> [B, T, H]
        torch.testing.assert_close(out[:, 0].permute(2, 0, 1), ref, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_table_mode_gradcheck(cell: str) -> None:
    """First-layer mode: a per-token table [E, G·H, V] gathered at token ids [T, E, B]."""
    torch.manual_seed(4)
    g = {"elman": 1, "lstm": 4, "gru": 3}[cell]
    h, v = 3, 4
    table, w = _rand(2, g * h, v), _rand(2, g * h, h, scale=0.5)
    idx = torch.randint(0, v, (5, 2, 3))
    if cell == "elman":
        args: tuple = (table, w)
        fn = lambda a, b: elman_scan(a, b, "tanh", idx=idx)  # noqa: E731
    elif cell == "lstm":
        args = (table, w)
        fn = lambda a, b: lstm_scan(a, b, idx=idx)  # noqa: E731
    else:
        args = (table, w, _rand(2, g * h))
        fn = lambda a, b, c: gru_scan(a, b, c, idx=idx)  # noqa: E731
    assert torch.autograd.gradcheck(fn, args, fast_mode=True)
    # and it equals xp mode on the gathered table
    xp = torch.gather(table.expand(5, -1, -1, -1), 3, idx.unsqueeze(2).expand(5, 2, g * h, 3))
    if cell == "elman":
        ref = elman_scan(xp, w, "tanh")
    elif cell == "lstm":
        ref = lstm_scan(xp, w)
    else:
        ref = gru_scan(xp, *args[1:])
    torch.testing.assert_close(fn(*args), ref)
