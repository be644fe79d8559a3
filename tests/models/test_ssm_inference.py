"""The training-free collapse mitigations (``SSMModel.with_inference``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from sepbench import models
from sepbench.errors import UserError
from sepbench.models.ssm import SSMModel
from sepbench.models.ssm_inference import calibrate_state_norm

F64 = torch.float64
VOCAB, WIDTH, N = 6, 4, 3


def model(layers: int = 1, seed: int = 0, **opts: Any) -> SSMModel:
    m = models.build("ssm", VOCAB, WIDTH, state_dim=N, layers=layers, seed=seed, **opts).double()
    with torch.no_grad():
        for layer in m.layers:
            layer.A_log[:1] = -20.0  # a channel that (almost) never forgets
            layer.dt_proj.bias.fill_(0.5)  # step sizes near 1: writes that matter
    assert isinstance(m, SSMModel)
    return m


def tokens(rows: int, t_len: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (rows, t_len), generator=torch.Generator().manual_seed(seed))


def stepped(m: SSMModel, x: torch.Tensor) -> torch.Tensor:
    """Logits of the incremental path, checking the carried floats against ``state_size``."""
    state = m.init_state(x.shape[0])
    out = []
    for t in range(x.shape[1]):
        assert sum(s.numel() for s in state) == x.shape[0] * m.state_size(t)
        logits, state = m.step(x[:, t], state)
        out.append(logits)
    return torch.stack(out, dim=1)


def reference_layer(m: SSMModel, x: torch.Tensor, lam: float, beta: float, gamma: float):
    """One layer's logits with Δ' = γΔ, ā' = λ·exp(Δ'A), b̄' = β·Δ'·u, written out from the
    parameters with a step loop (independent of ``Inference.adjust`` and the scan)."""
    layer = m.layers[0]
    e = m.embed(x)
    uz = layer.in_proj(layer.norm(e))
    u, z = uz.split(WIDTH, dim=-1)
    delta = gamma * torch.nn.functional.softplus(layer.dt_proj(u))
    decay = lam * torch.exp(delta * -torch.exp(layer.A_log))
    write = beta * delta * u
    B, C = layer.B_proj(u), layer.C_proj(u)
    h = torch.zeros(x.shape[0], WIDTH, N, dtype=F64)
    ys = []
    for t in range(x.shape[1]):
        h = decay[:, t].unsqueeze(-1) * h + write[:, t].unsqueeze(-1) * B[:, t].unsqueeze(1)
        ys.append((h * C[:, t].unsqueeze(1)).sum(-1))
    y = (torch.stack(ys, dim=1) + layer.D * u) * torch.nn.functional.silu(z)
    return m.readout(m.norm_f(e + layer.out_proj(y)))


def test_copy_shares_weights_and_leaves_the_model_alone() -> None:
    m = model()
    twin = m.with_inference(decay_scale=0.9, window=5)
    assert twin is not m and twin.layers[0].A_log is m.layers[0].A_log
    assert twin.inference.as_dict() == {"decay_scale": 0.9, "window": 5}
    assert m.inference.as_dict() == {}
    assert twin.config() == m.config()  # inference options are not build options
    x = tokens(2, 30)
    assert not torch.allclose(twin(x), m(x))
    torch.testing.assert_close(m.with_inference()(x), m(x))
    with torch.no_grad():  # training the model (shared parameters) changes the copy too
        m.layers[0].D.add_(1.0)
    torch.testing.assert_close(twin.with_inference()(x), m(x))


@pytest.mark.parametrize(
    ("lam", "beta", "gamma"), [(0.9, 1.0, 1.0), (1.0, 0.7, 1.0), (1.0, 1.0, 0.5), (0.95, 0.5, 2.0)]
)
def test_scales_follow_their_formulas(lam: float, beta: float, gamma: float) -> None:
    m = model()
    twin = m.with_inference(decay_scale=lam, write_scale=beta, dt_scale=gamma)
    x = tokens(2, 37, seed=1)
    with torch.no_grad():
        expected = reference_layer(m, x, lam, beta, gamma)
        torch.testing.assert_close(twin(x), expected, rtol=1e-9, atol=1e-9)
        assert not torch.allclose(m(x), expected)


OPTIONS: list[dict[str, Any]] = [
    {},
    {"decay_scale": 0.8, "write_scale": 0.7},
    {"dt_scale": 1.5},
    {"state_norm": "calibrated", "renorm_every": 4},
    {"state_norm": "calibrated", "renorm_every": 5, "decay_scale": 0.99},
    {"window": 1},
    {"window": 6},
    {"window": 50, "write_scale": 0.5},
]


def with_options(m: SSMModel, opts: dict[str, Any]) -> SSMModel:
    if opts.get("state_norm") == "calibrated":  # thresholds well below the states reached
        opts = {**opts, "state_norm": calibrate_state_norm(m, tokens(8, 12, seed=9), 0.5)}
    return m.with_inference(**opts)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: ",".join(o) or "plain")
def test_forward_equals_step(opts: dict[str, Any], layers: int) -> None:
    """Every mitigation computes the same logits on the parallel path (forward) and the
    incremental path (step), and the state tuple holds exactly ``state_size`` floats."""
    m = with_options(model(layers), opts)
    x = tokens(3, 43, seed=2)
    with torch.no_grad():
        torch.testing.assert_close(m(x), stepped(m, x), rtol=1e-9, atol=1e-9)


def test_state_size_of_each_mitigation() -> None:
    m = model(layers=2)
    assert m.with_inference(decay_scale=0.5).state_size(9) == 2 * WIDTH * N
    tau = [[1.0] * WIDTH] * 2
    assert m.with_inference(state_norm=tau).state_size(9) == 2 * WIDTH * N + 1
    assert m.with_inference(window=5).state_size(9) == 2 * (5 * WIDTH * N + 4 * WIDTH)


def test_state_norm_bounds_every_renormalised_state() -> None:
    """After each renormalisation ‖h[c]‖ ≤ τ[c](1 + 1e−6), on the parallel path (the trace)
    and the incremental path — and the thresholds do bind (the plain states exceed them)."""
    m = model(layers=2)
    x = tokens(4, 96, seed=3)
    tau = calibrate_state_norm(m, tokens(16, 16, seed=4))
    twin = m.with_inference(state_norm=tau, renorm_every=8)
    bound = np.asarray(tau)[:, None, None, :] * (1 + 1e-6)
    plain = m.state_trace(x, stride=8).norms
    assert (plain > bound).any()
    assert (twin.state_trace(x, stride=8).norms <= bound).all()
    state = twin.init_state(4)
    with torch.no_grad():
        for t in range(96):
            _, state = twin.step(x[:, t], state)
            if (t + 1) % 8 == 0:
                for i in range(2):
                    norms = state[i].norm(dim=-1).numpy()
                    assert (norms <= np.asarray(tau[i]) * (1 + 1e-6)).all()


def test_calibration_is_the_median_state_norm_at_the_training_length() -> None:
    m = model(layers=2)
    ref = tokens(9, 20, seed=5)
    tau = calibrate_state_norm(m, ref, multiplier=2.0)
    state = m.init_state(9)
    with torch.no_grad():
        for t in range(20):
            _, state = m.step(ref[:, t], state)
    for i in range(2):
        expected = 2.0 * state[i].norm(dim=-1).median(dim=0).values  # 9 rows: a true median
        np.testing.assert_allclose(tau[i], expected.numpy(), rtol=1e-9)


@pytest.mark.parametrize("window", [1, 4, 9])
def test_window_equals_recomputing_from_the_last_tokens(window: int) -> None:
    """One layer: the windowed model's logits at t are the plain model's logits at the end of
    tokens t − W + 1 … t (exact for the linear recurrence), at every t."""
    m = model(seed=3)
    twin = m.with_inference(window=window)
    x = tokens(2, 40, seed=6)
    with torch.no_grad():
        out = twin(x)
        for t in range(40):
            recomputed = m(x[:, max(0, t - window + 1) : t + 1])[:, -1]
            torch.testing.assert_close(out[:, t], recomputed, rtol=1e-9, atol=1e-9)


def test_window_is_per_layer_with_two_layers() -> None:
    """Two layers: each layer reads the state of its own last W inputs (checked against the
    plain layer re-run on those inputs) — which is *not* the model run on the last W tokens
    (layer 2's inputs depend on 2W − 1 tokens)."""
    window = 5
    m = model(layers=2, seed=4)
    with torch.no_grad():  # larger reads and writes: layer 1's far tokens reach the logits
        for layer in m.layers:
            for proj in (layer.B_proj, layer.C_proj, layer.out_proj):
                proj.weight.mul_(4.0)
    twin = m.with_inference(window=window)
    x = tokens(2, 30, seed=7)
    with torch.no_grad():
        hidden = m.embed(x)
        for i, layer in enumerate(m.layers):
            windowed = layer.run(hidden, twin_weights(m, i), twin.inference, i)
            for t in range(30):
                alone = layer(hidden[:, max(0, t - window + 1) : t + 1])[:, -1]
                torch.testing.assert_close(windowed[:, t], alone, rtol=1e-9, atol=1e-9)
            hidden = windowed
        torch.testing.assert_close(twin(x), m.readout(m.norm_f(hidden)))
        last_tokens = torch.stack([m(x[:, t - window + 1 : t + 1])[:, -1] for t in range(9, 30)])
        gap = (twin(x)[:, 9:30].transpose(0, 1) - last_tokens).abs().max()
        assert gap > 0.1, gap


def twin_weights(m: SSMModel, i: int):
    from sepbench.models.access import Weights

    return Weights.of(m).sub(f"layers.{i}")


def test_window_difference_form_matches_block_form_where_states_are_large() -> None:
    """A collapsed-looking state (decay 1, constant writes, 3000 tokens): the incremental
    difference form and the block form still agree in float64."""
    m = model(seed=5)
    with torch.no_grad():
        m.layers[0].A_log.fill_(-40.0)
    twin = m.with_inference(window=16)
    x = torch.full((1, 3000), 2)
    with torch.no_grad():
        torch.testing.assert_close(
            twin(x)[:, -50:], stepped(twin, x)[:, -50:], rtol=1e-7, atol=1e-7
        )
        assert m.state_trace(x, stride=1000).norms.max() > 100  # the full state did grow


@pytest.mark.parametrize(
    ("opts", "words"),
    [
        ({"decay": 0.5}, ["unknown option 'decay'", "decay_scale"]),
        ({"decay_scale": 0.0}, ["decay_scale", "(0, 1]"]),
        ({"decay_scale": 1.5}, ["decay_scale", "(0, 1]"]),
        ({"write_scale": -1}, ["write_scale", "(0, 1]"]),
        ({"write_scale": True}, ["write_scale"]),
        ({"dt_scale": math.inf}, ["dt_scale", "> 0"]),
        ({"window": 0}, ["window", ">= 1"]),
        ({"window": 2.5}, ["window", "integer"]),
        ({"renorm_every": 8}, ["renorm_every", "state_norm"]),
        ({"state_norm": [[1.0] * WIDTH]}, ["state_norm", "[2, 4]"]),
        ({"state_norm": [[-1.0] * WIDTH] * 2}, ["state_norm", ">= 0"]),
        ({"state_norm": [[1.0] * WIDTH] * 2, "renorm_every": 0}, ["renorm_every", ">= 1"]),
        ({"state_norm": [[1.0] * WIDTH] * 2, "window": 4}, ["'window'", "'state_norm'"]),
    ],
)
def test_bad_options_are_one_line_user_errors(opts: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(UserError) as err:
        model(layers=2).with_inference(**opts)
    message = str(err.value)
    assert "\n" not in message and "ssm.with_inference" in message
    for word in words:
        assert word in message


def test_other_families_have_no_inference_options() -> None:
    lstm = models.build("lstm", VOCAB, WIDTH)
    assert lstm.with_inference() is lstm
    with pytest.raises(UserError, match="lstm: cannot honour inference option 'window'"):
        lstm.with_inference(window=4)
    with pytest.raises(UserError, match="multiplier"):
        calibrate_state_norm(model(), tokens(2, 5), multiplier=0)
