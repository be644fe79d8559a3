"""The selective scan (``sepbench.models.ssm_scan``) against the step recurrence.

The reference here is an explicit loop over time written from the recurrence itself,
h_t = exp(a_t) h_{t−1} + x_t B_t, y_t = C_t · h_t, independent of the chunked scan; the
model-level checks use ``SSMLayer.step``.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sepbench import models
from sepbench.models import ssm_scan
from sepbench.models.ssm_scan import CHUNK, Renorm, scan, selective_scan, window_scan

F64 = torch.float64


def reference(
    a: torch.Tensor,
    x: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    renorm: tuple[int, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(y [R, T, d], every state h_t [R, T, d, n]) by the step-by-step recurrence; with
    ``renorm = (every, τ)`` the state after every ``every``-th step is shrunk to norm ≤ τ."""
    rows, t_len, d = a.shape
    h = torch.zeros(rows, d, B.shape[-1], dtype=a.dtype)
    hs = []
    for t in range(t_len):
        h = torch.exp(a[:, t]).unsqueeze(-1) * h + x[:, t].unsqueeze(-1) * B[:, t].unsqueeze(1)
        if renorm is not None and (t + 1) % renorm[0] == 0:
            norm = h.norm(dim=-1, keepdim=True)
            tau = renorm[1].unsqueeze(-1)
            h = torch.where(norm > tau, h * tau / norm, h)
        hs.append(h)
    states = torch.stack(hs, dim=1)
    return (states * C.unsqueeze(2)).sum(-1), states


def windowed(a: torch.Tensor, states: torch.Tensor, window: int) -> torch.Tensor:
    """h_t − exp(L_t − L_{t−W}) h_{t−W} (h_{t−W} = 0 for t < W), from all states."""
    L = a.cumsum(dim=1)
    out = states.clone()
    for t in range(window, a.shape[1]):
        out[:, t] -= torch.exp(L[:, t] - L[:, t - window]).unsqueeze(-1) * states[:, t - window]
    return out


def inputs(rows: int, t_len: int, d: int, n: int, seed: int = 0, slow: bool = True):
    """Random (a, x, B, C) in float64; log-decays from −4 to exactly 0 (no forgetting) with a
    share near 0 so states survive many chunks."""
    g = torch.Generator().manual_seed(seed)
    a = -torch.rand(rows, t_len, d, generator=g, dtype=F64) * 4
    if slow:
        a[..., 0] = 0.0
        a[..., 1:2] *= 1e-3
    x = torch.randn(rows, t_len, d, generator=g, dtype=F64)
    B = torch.randn(rows, t_len, n, generator=g, dtype=F64)
    C = torch.randn(rows, t_len, n, generator=g, dtype=F64)
    return a, x, B, C


@pytest.mark.parametrize("t_len", [1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 3, 8192])
def test_scan_equals_the_recurrence(t_len: int) -> None:
    a, x, B, C = inputs(2, t_len, 3, 2)
    y, states = reference(a, x, B, C)
    out = scan(a, x, B, C, stride=1)
    torch.testing.assert_close(out.y, y, rtol=1e-6, atol=1e-9)
    assert out.states is not None
    torch.testing.assert_close(out.states, states, rtol=1e-6, atol=1e-9)
    for stride in (3, CHUNK, 2 * CHUNK + 1):
        got = scan(a, x, B, C, stride=stride).states
        assert got is not None and got.shape == (2, t_len // stride, 3, 2)
        torch.testing.assert_close(got, states[:, stride - 1 :: stride], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("t_len", [1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 3, 8192])
def test_layer_forward_equals_layer_step(t_len: int) -> None:
    """The model's own parallel path (``SSMLayer.run``) equals its ``step`` loop in float64,
    with some channels set to (almost) never forget so the state spans the whole length."""
    model = models.build("ssm", 5, 4, state_dim=3, seed=0).double()
    layer = model.layers[0]
    with torch.no_grad():
        layer.A_log[:2] = -30.0  # A ≈ −1e−13: decay ≈ 1
    g = torch.Generator().manual_seed(1)
    xs = torch.randn(2, t_len, 4, generator=g, dtype=F64)
    h = torch.zeros(2, 4, 3, dtype=F64)
    steps = []
    with torch.no_grad():
        full = layer(xs)
        for t in range(t_len):
            out, h = layer.step(xs[:, t], h)
            steps.append(out)
    torch.testing.assert_close(full, torch.stack(steps, dim=1), rtol=1e-6, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 3),
    t_len=st.integers(1, 40),
    d=st.integers(1, 4),
    n=st.integers(1, 3),
    chunk=st.integers(1, 9),
    stride=st.integers(1, 12),
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([0.0, 1e-3, 1.0, 30.0]),
)
def test_scan_property(rows, t_len, d, n, chunk, stride, seed, scale) -> None:
    """Any shape, chunk length and stride; log-decays from 0 (scale 0: no decay at all) to
    strong (−30 a step: exp underflows inside a chunk, which must not make NaNs)."""
    g = torch.Generator().manual_seed(seed)
    a = -torch.rand(rows, t_len, d, generator=g, dtype=F64) * scale
    x, B, C = (torch.randn(rows, t_len, k, generator=g, dtype=F64) for k in (d, n, n))
    y, states = reference(a, x, B, C)
    out = scan(a, x, B, C, chunk=chunk, stride=stride)
    torch.testing.assert_close(out.y, y, rtol=1e-6, atol=1e-9)
    assert out.states is not None
    torch.testing.assert_close(out.states, states[:, stride - 1 :: stride], rtol=1e-6, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    t_len=st.integers(1, 40),
    every=st.integers(1, 12),
    stride=st.integers(1, 7),
    seed=st.integers(0, 2**16),
)
def test_renormalising_scan_property(t_len, every, stride, seed) -> None:
    """State normalisation in the scan equals renormalising inside the step loop."""
    a, x, B, C = inputs(2, t_len, 3, 2, seed)
    tau = torch.rand(3, generator=torch.Generator().manual_seed(seed), dtype=F64)
    tau[0] = 0.0  # a zero threshold empties that channel at every renormalisation
    y, states = reference(a, x, B, C, (every, tau))
    out = scan(a, x, B, C, stride=stride, renorm=Renorm(every, tau))
    torch.testing.assert_close(out.y, y, rtol=1e-6, atol=1e-9)
    assert out.states is not None
    torch.testing.assert_close(out.states, states[:, stride - 1 :: stride], rtol=1e-6, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    t_len=st.integers(1, 40),
    window=st.integers(1, 45),
    stride=st.integers(1, 7),
    seed=st.integers(0, 2**16),
)
def test_window_scan_property(t_len, window, stride, seed) -> None:
    """The block form equals the difference of full states, h_t − exp(L_t − L_{t−W}) h_{t−W}."""
    a, x, B, C = inputs(2, t_len, 3, 2, seed)
    _, states = reference(a, x, B, C)
    hw = windowed(a, states, window)
    out = window_scan(a, x, B, C, window, stride=stride)
    torch.testing.assert_close(out.y, (hw * C.unsqueeze(2)).sum(-1))
    assert out.states is not None
    torch.testing.assert_close(out.states, hw[:, stride - 1 :: stride])


@pytest.mark.parametrize("window", [1, 7, 300, 1024])
def test_window_at_long_length(window: int) -> None:
    a, x, B, C = inputs(1, 2500, 2, 2, seed=3)
    _, states = reference(a, x, B, C)
    hw = windowed(a, states, window)
    y = window_scan(a, x, B, C, window).y
    torch.testing.assert_close(y, (hw * C.unsqueeze(2)).sum(-1), rtol=1e-6, atol=1e-9)


def test_slices_and_leading_dims_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tensors built in many small slices, and leading dims (an ensemble's members) folded
    into the rows, give the same result as one big slice on flat rows."""
    a, x, B, C = inputs(6, 45, 3, 2, seed=4)
    y = selective_scan(a, x, B, C)
    w = window_scan(a, x, B, C, 10, stride=4)
    monkeypatch.setattr(ssm_scan, "SCAN_FLOATS", 1)
    torch.testing.assert_close(selective_scan(a, x, B, C), y)
    w_sliced = window_scan(a, x, B, C, 10, stride=4)
    torch.testing.assert_close(w_sliced.y, w.y)
    assert w.states is not None and w_sliced.states is not None
    torch.testing.assert_close(w_sliced.states, w.states)
    shaped = [v.reshape(2, 3, 45, -1) for v in (a, x, B, C)]
    torch.testing.assert_close(selective_scan(*shaped), y.reshape(2, 3, 45, 3))


def test_float32_scan_is_finite_and_close_at_long_length() -> None:
    """The long scan in float32 (the models' dtype) stays within float tolerance of float64."""
    a, x, B, C = inputs(2, 4096, 4, 3, seed=5)
    y64 = selective_scan(a, x, B, C)
    y32 = selective_scan(*(v.float() for v in (a, x, B, C)))
    assert torch.isfinite(y32).all()
    scale = y64.abs().max()
    assert float((y32.double() - y64).abs().max() / scale) < 1e-4


def test_gradients_are_correct() -> None:
    """gradcheck (finite differences, float64) through the intra-chunk form, the inter-chunk
    loop, renormalisation, strided states and the sliding window (block form)."""
    a, x, B, C = inputs(2, 2 * 4 + 3, 2, 2, seed=6)
    a = a - 0.05  # off a = 0, where the intra-chunk clamp of L_t − L_s at 0 has its kink
    args = tuple(v.clone().requires_grad_() for v in (a, x, B, C))
    tau = torch.tensor([0.3, 10.0], dtype=F64)

    def plain(*v):
        out = scan(*v, chunk=4, stride=3)
        assert out.states is not None
        return out.y, out.states

    def renorm(*v):
        return scan(*v, chunk=4, renorm=Renorm(4, tau)).y

    def window(*v):
        out = window_scan(*v, 4, stride=3)
        assert out.states is not None
        return out.y, out.states

    for fn in (plain, renorm, window):
        assert torch.autograd.gradcheck(fn, args), fn.__name__


def test_ensemble_path_at_long_length() -> None:
    """The batched ensemble path (stacked weights: the member dim folded into the scan's rows)
    equals each member run alone, across many chunks."""
    ens = models.build_ensemble("ssm", 7, 8, [0, 1], state_dim=4, layers=2).double()
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 7, (2, 3, 5 * CHUNK + 3), generator=g)
    out = ens(x)
    for e in range(2):
        torch.testing.assert_close(out[e], ens.member(e)(x[e]), rtol=1e-9, atol=1e-9)
