"""State traces (``SSMModel.state_trace``) and the collapse detector (``models.collapse``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sepbench import models
from sepbench.errors import UserError
from sepbench.models.collapse import StateTrace, detect_collapse
from sepbench.models.ssm import SSMModel
from sepbench.models.ssm_inference import calibrate_state_norm

F64 = torch.float64


def ssm(vocab: int, width: int, n: int, layers: int = 1, seed: int = 0, **opts) -> SSMModel:
    m = models.build("ssm", vocab, width, state_dim=n, layers=layers, seed=seed, **opts)
    assert isinstance(m, SSMModel)
    return m


def test_trace_equals_the_stepped_states() -> None:
    """Norms, mean and variance of the states the step path carries; L_t from the layer's
    own parameters (Δ = softplus(dt_proj(u)), a = −Δ·exp(A_log))."""
    m = ssm(5, 4, 3, layers=2).double()
    x = torch.randint(0, 5, (3, 50), generator=torch.Generator().manual_seed(0))
    trace = m.state_trace(x, stride=7)
    assert trace.steps == (7, 14, 21, 28, 35, 42, 49)
    assert trace.norms.shape == trace.log_decay.shape == (2, 3, 7, 4)
    assert trace.mean.shape == trace.variance.shape == (2, 3, 7)
    state = m.init_state(3)
    with torch.no_grad():
        for t in range(50):
            _, state = m.step(x[:, t], state)
            if (t + 1) % 7 == 0:
                j = (t + 1) // 7 - 1
                for i in range(2):
                    h = state[i].numpy()
                    np.testing.assert_allclose(trace.norms[i, :, j], np.linalg.norm(h, axis=-1))
                    np.testing.assert_allclose(trace.mean[i, :, j], h.mean(axis=(1, 2)))
                    np.testing.assert_allclose(trace.variance[i, :, j], h.var(axis=(1, 2)))
        layer = m.layers[0]
        u = layer.in_proj(layer.norm(m.embed(x)))[..., :4]
        a = torch.nn.functional.softplus(layer.dt_proj(u)) * -torch.exp(layer.A_log)
    L = a.cumsum(dim=1).numpy()
    np.testing.assert_allclose(trace.log_decay[0], L[:, 6::7])
    np.testing.assert_allclose(trace.first_log_decay[0], L[:, 0])
    np.testing.assert_allclose(trace.retention()[0], np.exp(L[:, 6::7] - L[:, :1]))


def test_window_trace_is_the_window_state() -> None:
    """Within the first W tokens the window's state is the whole state; later it is smaller
    for a channel that never forgets."""
    m = ssm(3, 4, 2).double()
    with torch.no_grad():
        m.layers[0].A_log[0] = -30.0
        m.layers[0].dt_proj.bias.fill_(1.0)
    x = torch.zeros(2, 64, dtype=torch.long)
    plain = m.state_trace(x, stride=4).norms
    window = m.with_inference(window=16).state_trace(x, stride=4).norms
    np.testing.assert_allclose(window[:, :, :4], plain[:, :, :4])
    assert (window[0, :, -1, 0] < 0.5 * plain[0, :, -1, 0]).all()


def test_trace_rejects_a_bad_stride() -> None:
    m = ssm(3, 4, 2)
    x = torch.zeros(1, 10, dtype=torch.long)
    for stride in (0, 11, 2.0, True):
        with pytest.raises(UserError, match=r"stride must be an integer in \[1, 10\]"):
            m.state_trace(x, stride=stride)  # type: ignore[arg-type]


def synthetic(norms: np.ndarray, variance: np.ndarray | None = None, log_decay=None):
    """A StateTrace from [rows, steps, channels] norms of one layer (steps 8, 16, …)."""
    rows, n_steps, ch = norms.shape
    var = np.ones((1, rows, n_steps)) if variance is None else variance[None]
    ld = np.full((1, rows, n_steps, ch), -5.0) if log_decay is None else log_decay
    return StateTrace(
        steps=tuple(8 * (i + 1) for i in range(n_steps)),
        norms=norms[None],
        log_decay=ld,
        first_log_decay=np.zeros((1, rows, ch)),
        mean=np.zeros((1, rows, n_steps)),
        variance=var,
    )


def test_detector_rules_on_synthetic_traces() -> None:
    norms = np.ones((4, 8, 5))  # 4 rows, steps 8 … 64, 5 channels
    norms[:2, :, 0] = [1, 2, 4, 8, 9, 10.5, 20, 30]  # rows 0, 1: channel 0 passes 10× at 48
    rep = detect_collapse(synthetic(norms), train_length=20)
    assert rep.reference_step == 16
    assert rep.row_onsets == (48, 48, None, None)
    assert rep.onset == 48  # half the rows
    assert rep.outlier_channels == ((0,),)
    np.testing.assert_allclose(rep.outlier_rows[0], [0, 0, 0, 0, 0, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(rep.max_norm[0, -1], (30 + 30 + 1 + 1) / 4)

    one_row = norms.copy()
    one_row[1, :, 0] = 1.0
    assert detect_collapse(synthetic(one_row), 20).onset is None  # a quarter of the rows

    variance = np.ones((4, 8))
    variance[:, 5:] = 10.5  # a variance jump at 48 in every row, no outlier
    rep = detect_collapse(synthetic(np.ones((4, 8, 5)), variance), 16)
    assert rep.onset == 48 and rep.outlier_channels == ((),)

    old = np.ones((4, 8, 5))
    old[:, :, 0] = 50.0  # an outlier from the start is how the model works, not collapse
    rep = detect_collapse(synthetic(old), 16)
    assert rep.onset is None and rep.outlier_rows[0, 0] == 1.0

    log_decay = np.full((1, 4, 8, 5), -5.0)
    log_decay[..., 2] = -0.1  # channel 2 keeps exp(−0.1) of its first token
    rep = detect_collapse(synthetic(np.ones((4, 8, 5)), log_decay=log_decay), 16)
    assert rep.unforgetting_channels == ((2,),)


def test_detector_errors() -> None:
    trace = synthetic(np.ones((2, 4, 3)))
    with pytest.raises(UserError, match="needs a step <= train_length 5"):
        detect_collapse(trace, 5)
    with pytest.raises(UserError, match="train_length must be an integer >= 1"):
        detect_collapse(trace, 0)
    with pytest.raises(UserError, match="factor must be > 1"):
        detect_collapse(trace, 8, factor=1.0)


def handset(decay: float) -> SSMModel:
    """One layer, width 4, one state entry per channel, every token writes 1 into every
    channel: channel 0 keeps everything (ā = 1 − 1e−13), channels 1–3 decay by ``decay``.
    So h_t[0] = t and h_t[c] = (1 − decay^t) / (1 − decay)."""
    m = ssm(2, 4, 1, gate=False, layer_norm=False).double()
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        layer = m.layers[0]
        m.embed.weight.fill_(1.0)
        layer.in_proj.weight.copy_(torch.eye(4))
        layer.dt_proj.bias.fill_(math.log(math.e - 1))  # Δ = 1
        layer.A_log.copy_(torch.tensor([-30.0, *[math.log(-math.log(decay))] * 3]))
        layer.B_proj.weight.fill_(0.25)  # B = mean(u) = 1
    return m


def test_handset_decay_one_channel_is_detected_at_its_predicted_onset() -> None:
    """The trace equals the closed form, and the detector's onset is the first traced step
    past T_train where the closed form crosses either threshold."""
    decay, train, stride = 0.9, 32, 16
    m = handset(decay)
    trace = m.state_trace(torch.zeros(2, 1024, dtype=torch.long), stride=stride)
    t = np.arange(stride, 1025, stride, dtype=float)
    other = (1 - decay**t) / (1 - decay)
    np.testing.assert_allclose(trace.norms[0, 0, :, 0], t, rtol=1e-9)
    np.testing.assert_allclose(trace.norms[0, 1, :, 1:], np.repeat(other[:, None], 3, 1))
    entries = np.stack([t, other, other, other], axis=1)
    var = entries.var(axis=1)
    ref = train // stride - 1
    crossed = (t > 10 * other) | (var > 10 * var[ref])
    crossed[: ref + 1] = False
    expected = int(t[np.argmax(crossed)])
    rep = detect_collapse(trace, train)
    assert rep.onset == expected and 48 <= expected <= 160
    assert rep.unforgetting_channels == ((0,),)
    for opts in (
        {"decay_scale": math.exp(-1 / train)},
        {"state_norm": calibrate_state_norm(m, torch.zeros(4, train, dtype=torch.long))},
        {"window": train},
    ):
        mitigated = m.with_inference(**opts).state_trace(torch.zeros(2, 1024, dtype=torch.long))
        assert detect_collapse(mitigated, train).onset is None, opts


def majority_batch(g: torch.Generator, rows: int, length: int, p: float = 0.5):
    """Tokens a (0) / b (1), a with probability p; target at each step: whether a leads (0),
    b leads (1) or they tie (2) so far — a running count no finite decay can keep exactly."""
    x = (torch.rand(rows, length, generator=g) >= p).long()
    lead = torch.cumsum(1 - 2 * x, dim=1)
    return x, torch.where(lead > 0, 0, torch.where(lead < 0, 1, 2))


@pytest.mark.slow
def test_trained_model_collapses_past_its_training_length_and_mitigations_stop_it() -> None:
    """A tiny SSM (width 8, 4 state numbers a channel) trained 300 steps at T_train = 32 on
    the running majority learns near-1 decays; on SM24's repeated-token probe its state keeps
    growing past T_train (state variance ≫ 10× its T_train value) and the detector places the
    onset past T_train; each of the three mitigations removes it."""
    train, seed = 32, 2
    m = ssm(3, 8, 4, seed=seed)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(seed)
    for _ in range(300):
        x, y = majority_batch(g, 32, train)
        loss = torch.nn.functional.cross_entropy(m(x).reshape(-1, 3), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        x, y = majority_batch(g, 256, train)
        assert (m(x).argmax(-1) == y).float().mean() > 0.95  # it did learn the task
        probe = torch.zeros(8, 2048, dtype=torch.long)
        rep = detect_collapse(m.state_trace(probe), train)
        ref = rep.steps.index(train)
        assert rep.onset is not None and train < rep.onset <= 1024
        assert rep.variance[0, -1] > 10 * rep.variance[0, ref]
        assert rep.max_norm[0, -1] > 3 * rep.max_norm[0, ref]
        reference_rows, _ = majority_batch(g, 64, train)
        for opts in (
            {"decay_scale": math.exp(-1 / train)},
            {"state_norm": calibrate_state_norm(m, reference_rows)},
            {"window": train},
        ):
            mitigated = detect_collapse(m.with_inference(**opts).state_trace(probe), train)
            assert mitigated.onset is None, opts
