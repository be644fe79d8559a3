"""The anchors' initialisations as RNN options: forget-gate bias (Delétang et al. 2023's +1)
and orthogonal recurrent weights; the defaults draw nothing extra."""

from __future__ import annotations

import pytest
import torch

from sepbench import models
from sepbench.errors import UserError


def test_forget_bias_shifts_only_the_forget_rows_of_every_layer() -> None:
    plain = models.build("lstm", 10, 6, seed=3, layers=2)
    biased = models.build("lstm", 10, 6, seed=3, layers=2, forget_bias=1.0)
    for name, p in plain.named_parameters():
        q = dict(biased.named_parameters())[name]
        if name.startswith("rnn.bias_ih_l"):
            torch.testing.assert_close(q[6:12], p[6:12] + 1.0)  # block f of i, f, g, o
            torch.testing.assert_close(q[:6], p[:6])
            torch.testing.assert_close(q[12:], p[12:])
        else:
            assert torch.equal(p, q), name
    assert biased.options["forget_bias"] == 1.0 and plain.options["forget_bias"] == 0.0


@pytest.mark.parametrize(("family", "gates"), [("lstm", 4), ("gru", 3), ("elman", 1)])
def test_orthogonal_recurrence_makes_each_gate_block_orthogonal(family: str, gates: int) -> None:
    model = models.build(family, 10, 8, seed=0, recurrent_init="orthogonal")
    w = dict(model.named_parameters())["rnn.weight_hh_l0"].detach()
    for g in range(gates):
        block = w[8 * g : 8 * (g + 1)]
        torch.testing.assert_close(block @ block.T, torch.eye(8), atol=1e-5, rtol=0)
    default = models.build(family, 10, 8, seed=0)
    assert not torch.allclose(dict(default.named_parameters())["rnn.weight_hh_l0"], w)
    # everything drawn before the recurrent weights is the default model's
    assert torch.equal(default.embed.weight, model.embed.weight)


def test_explicit_defaults_are_the_default_model() -> None:
    a = models.build("lstm", 10, 6, seed=5)
    b = models.build("lstm", 10, 6, seed=5, forget_bias=0.0, recurrent_init="default")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_members_of_an_ensemble_start_as_their_seeded_models() -> None:
    ens = models.build_ensemble("lstm", 10, 6, [1, 2], forget_bias=1.0, recurrent_init="orthogonal")
    alone = models.build("lstm", 10, 6, seed=2, forget_bias=1.0, recurrent_init="orthogonal")
    for (_, p), (_, q) in zip(
        ens.member(1).named_parameters(), alone.named_parameters(), strict=True
    ):
        assert torch.equal(p, q)


def test_init_options_are_validated() -> None:
    with pytest.raises(UserError, match="unknown option 'forget_bias'"):
        models.build("gru", 10, 6, forget_bias=1.0)
    with pytest.raises(UserError, match="applies only with cell=lstm"):
        models.build("rag", 10, 6, cell="gru", forget_bias=1.0)
    with pytest.raises(UserError, match="recurrent_init"):
        models.build("lstm", 10, 6, recurrent_init="chrono")
    assert models.build("rag", 10, 6, seed=0, forget_bias=1.0).options["forget_bias"] == 1.0
