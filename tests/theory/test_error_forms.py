"""The error-allowed lower bounds: their values, their validity against explicit strategies,
and the sampler hypotheses their derivation needs (checked on the tasks' own generators)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from sepbench import tasks, theory
from sepbench.errors import UserError
from sepbench.theory import formulas


def test_fano_bits_values() -> None:
    assert formulas.fano_bits(2, 0.0) == 1.0
    assert formulas.fano_bits(4, 0.0) == 2.0
    assert formulas.fano_bits(2, 0.1) == pytest.approx(1 - 0.4689955935892812)
    assert formulas.fano_bits(2, 0.5) == 0.0 and formulas.fano_bits(4, 0.75) == 0.0
    assert formulas.fano_bits(4, 0.9) == 0.0
    eps = np.linspace(0, 0.74, 40)
    values = [formulas.fano_bits(4, float(e)) for e in eps]
    assert all(a > b for a, b in itertools.pairwise(values))
    # more symbols, more bits at the same error (below one half)
    assert formulas.fano_bits(2, 0.2) < formulas.fano_bits(4, 0.2) < formulas.fano_bits(16, 0.2)
    with pytest.raises(UserError, match="error"):
        formulas.fano_bits(2, 1.0)


def test_error_forms_reduce_to_the_exact_bounds_at_zero_error() -> None:
    for rid, params in (("B24-T3", {"alphabet": 4}), ("W24-R", {}), ("B24-P9", {"values": 8})):
        r = theory.get(rid)
        assert r.error_lower_width(512, 32, error=0.0, **params) == pytest.approx(
            r.lower_width(512, 32, **params)
        )
    r = theory.get("B24-T3")
    assert r.error_lower_width(1024, 32, error=0.1, alphabet=2) == pytest.approx(
        1024 * 0.5310044064107188 / 32
    )
    assert theory.get("B24-T11").error_lower_width(64, 32, error=0.1) is None
    with pytest.raises(UserError, match="error"):
        r.error_lower_width(64, 32, error=1.2)


@pytest.mark.parametrize("n", [12, 48, 300])
def test_explicit_strategies_respect_the_error_bound(n: int) -> None:
    """Strategies with a known state size and error on uniform binary index lookup: each must
    use at least the bound's bits at its own error — a bound above any of them is wrong."""
    strategies = []
    for b in range(0, n + 1, max(1, n // 12)):
        # keep the first b symbols, guess the rest: error (n − b)/(2n)
        strategies.append((b, (n - b) / (2 * n)))
    for block in (3, 5):
        # keep the majority of each block of `block` symbols, answer it for the whole block
        p_wrong = sum(math.comb(block - 1, j) for j in range(block // 2 + 1, block)) / 2 ** (
            block - 1
        )
        strategies.append((n // block, p_wrong * (n // block) * block / n + 0.5 * (n % block) / n))
    for bits, err in strategies:
        assert bits >= n * formulas.fano_bits(2, err) - 1e-9, (bits, err)
    # and the bound is not vacuous: keeping every symbol is exactly tight at ε = 0
    assert n * formulas.fano_bits(2, 0.0) == n


def _chi2_uniform(counts: np.ndarray) -> float:
    return float(stats.chisquare(counts).pvalue)


def test_index_lookup_sampler_meets_the_derivations_hypotheses() -> None:
    # i.i.d. uniform symbols, a uniform query position independent of the symbols
    k, n, rows = 4, 6, 40000
    task = tasks.make("index_lookup", alphabet=k, max_length=16)
    batch = task.sample(n, rows, seed=11)
    vocab = list(task.vocab)
    sym = np.vectorize(lambda t: int(vocab[t][1:]))(batch.inputs[:, :n])
    pos = np.vectorize(lambda t: int(vocab[t][1:]) - 1)(batch.inputs[:, n])
    assert _chi2_uniform(np.bincount(sym.ravel(), minlength=k)) > 1e-3
    assert _chi2_uniform(np.bincount(pos, minlength=n)) > 1e-3
    # pairwise independence of two positions, and of the query from the queried symbol
    joint = np.bincount(sym[:, 0] * k + sym[:, 3], minlength=k * k)
    assert _chi2_uniform(joint) > 1e-3
    queried = sym[np.arange(rows), pos]
    assert _chi2_uniform(np.bincount(pos * k + queried, minlength=n * k)) > 1e-3


def test_associative_recall_sampler_meets_the_derivations_hypotheses() -> None:
    # distinct keys; i.i.d. uniform values independent of the keys; a uniform query pair
    nk, nv, n, rows = 16, 4, 5, 40000
    task = tasks.make("associative_recall", keys=nk, values=nv)
    batch = task.sample(n, rows, seed=12)
    vocab = list(task.vocab)
    toks = np.vectorize(lambda t: vocab[t])(batch.inputs)
    keys = np.vectorize(lambda t: int(t[1:]))(toks[:, 0 : 2 * n : 2])
    vals = np.vectorize(lambda t: int(t[1:]))(toks[:, 1 : 2 * n : 2])
    query = np.vectorize(lambda t: int(t[1:]))(toks[:, 2 * n])
    assert all(len(set(row)) == n for row in keys[:500])
    assert _chi2_uniform(np.bincount(vals.ravel(), minlength=nv)) > 1e-3
    assert _chi2_uniform(np.bincount(keys[:, 0] * nv + vals[:, 0], minlength=nk * nv)) > 1e-3
    j = np.argmax(keys == query[:, None], axis=1)
    assert _chi2_uniform(np.bincount(j, minlength=n)) > 1e-3
    assert _chi2_uniform(np.bincount(j * nv + vals[np.arange(rows), j], minlength=n * nv)) > 1e-3


def test_every_lower_bound_has_an_error_form_or_says_why_not() -> None:
    for r in theory.results():
        if r.direction == "upper":
            assert r.error_fn is None and not r.error_note
        elif r.error_fn is not None:
            assert r.error_formula and not r.error_note
        else:
            assert r.error_note and not r.error_formula
