"""The deep-thinking net: k iterations == k applications of its block (re-implemented from the
parameters with explicit shifts), its causal reach, recall, stepping at any iteration count."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from sepbench import models
from sepbench.errors import UserError
from sepbench.models.access import Weights
from tests.models.conftest import VOCAB, tokens

WIDTH = 8
Params = dict[str, torch.Tensor]


def _conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Causal width-3 convolution by its definition: y_t = Σ_j W[:, :, j] · x_{t − 2 + j},
    x_s = 0 for s < 0; ``x : [B, C, T]``."""
    out = torch.zeros(x.shape[0], weight.shape[0], x.shape[2], dtype=x.dtype)
    for j in range(3):
        shift = 2 - j
        shifted = torch.zeros_like(x)
        shifted[:, :, shift:] = x[:, :, : x.shape[2] - shift]
        out += torch.einsum("oc,bct->bot", weight[:, :, j], shifted)
    return out


def reference(model: Any, x: torch.Tensor, k: int) -> torch.Tensor:
    p: Params = {n: t.detach() for n, t in model.named_parameters()}
    e = p["embed.weight"][x].transpose(1, 2)
    h = torch.relu(_conv(e, p["project.weight"]))
    for _ in range(k):
        if model.options["recall"]:
            h = torch.relu(_conv(torch.cat([h, e], 1), p["recall.weight"]))
        for i in range(2):
            y = torch.relu(_conv(h, p[f"blocks.{i}.conv1.weight"]))
            h = torch.relu(_conv(y, p[f"blocks.{i}.conv2.weight"]) + h)
    h = torch.relu(_conv(h, p["head_convs.0.weight"]))
    h = torch.relu(_conv(h, p["head_convs.1.weight"]))
    return _conv(h, p["head_convs.2.weight"]).transpose(1, 2)


@pytest.mark.parametrize("recall", [True, False])
def test_k_iterations_equal_k_applications_of_the_block(recall: bool) -> None:
    model = models.build("dtnet", VOCAB, WIDTH, seed=3, iterations=3, recall=recall).double()
    x = tokens(2, 17, seed=4)
    for k in (1, 2, 3, 8, 20):
        torch.testing.assert_close(model(x, iterations=k), reference(model, x, k))
    torch.testing.assert_close(model(x), reference(model, x, 3))
    assert not torch.allclose(model(x, iterations=1), model(x, iterations=8))


@pytest.mark.parametrize("iterations", [1, 2])
def test_causal_reach_is_ten_positions_per_iteration_plus_eight(iterations: int) -> None:
    """The docstring's count: output t reads tokens t − (10R + 8) … t and nothing earlier."""
    model = models.build("dtnet", VOCAB, WIDTH, seed=0, iterations=iterations).double()
    reach = 10 * iterations + 8
    t = 35
    x = tokens(4, t + 1, seed=1)
    base = model(x)[:, t]
    for s, moves in [(t - reach, True), (t - reach - 1, False)]:
        y = x.clone()
        y[:, s] = (y[:, s] + 1) % VOCAB
        changed = not torch.allclose(model(y)[:, t], base, atol=1e-12, rtol=0)
        assert changed == moves, s


def test_recall_reads_the_input_every_iteration() -> None:
    x = tokens(2, 9, seed=7)
    for recall in (True, False):
        model = models.build("dtnet", VOCAB, WIDTH, seed=0, recall=recall)
        w = Weights.of(model)
        e, h = model.start(x, w)
        same = torch.allclose(model.iterate(h, e, w), model.iterate(h, torch.randn_like(e), w))
        assert same != recall


def test_step_matches_forward_at_any_iteration_count() -> None:
    model = models.build("dtnet", VOCAB, WIDTH, seed=5, iterations=2, embed_dim=5)
    x = tokens(3, 12, seed=6)
    for count in (1, 2, 6):
        full = model(x, iterations=count)
        state = model.init_state(3, iterations=count)
        for t in range(x.shape[1]):
            logits, state = model.step(x[:, t], state)
            torch.testing.assert_close(logits, full[:, t], atol=2e-5, rtol=1e-4)
            assert sum(s.numel() for s in state) == 3 * model.state_size(t + 1, count)


def test_state_size_formula() -> None:
    w, d, r = 16, 4, 5
    with_recall = models.build("dtnet", 3, w, embed_dim=d, iterations=r)
    assert with_recall.state_size(1000) == 2 * (d + r * ((w + d) + 4 * w) + 2 * w + w // 2)
    assert with_recall.state_size(1) == with_recall.state_size(1000)  # constant in T
    plain = models.build("dtnet", 3, w, embed_dim=d, iterations=r, recall=False)
    assert plain.state_size(7, iterations=2 * r) == 2 * (d + 2 * r * 4 * w + 2 * w + w // 2)


def test_defaults_and_errors() -> None:
    model = models.build("dtnet", VOCAB, WIDTH)
    assert model.options == {"iterations": 30, "recall": True, "embed_dim": 16}
    with pytest.raises(UserError, match=r"'iterations' must be an integer >= 1, got 0"):
        models.build("dtnet", VOCAB, WIDTH, iterations=0)
    with pytest.raises(UserError, match="iterations must be an integer >= 1, got 0"):
        model(tokens(1, 3), iterations=0)
    with pytest.raises(UserError, match="unknown option 'heads'"):
        models.build("dtnet", VOCAB, WIDTH, heads=2)
