"""Model speed: one training step (forward + backward + AdamW) per family and width, and
ensembles of 8 against 8 models trained one after another.

Run: ``pytest benchmarks/bench_models.py --benchmark-only -s``. Not part of the test suite.
Batch 64, T = 64 tokens, vocabulary 16, one intra-op thread unless ``SEPBENCH_THREADS`` says
otherwise (``benchmarks/conftest.py`` pins OMP_NUM_THREADS=1 by default).

* ``test_train_step[family-width]`` — one step of a single model; ``extra_info["ms"]``.
* ``test_quantised_slowdown[family-width]`` — one step with bounded precision
  (``state_bits=4``; ``precision_bits=8`` for the transformer, both for the hybrid) against the
  same model unbounded, interleaved best-of rounds; ``extra_info``: ``plain_ms``,
  ``quantised_ms``, ``slowdown``.
* ``test_ensemble_speedup[family-width]`` — 8 separately built models, one step each, one after
  another (each with its own AdamW), against the same 8 seeds as one ``build_ensemble`` step
  (loss = sum of the members' mean losses, one AdamW); both timed in one process, interleaved,
  best of several rounds (robust to a shared machine). ``extra_info``: ``sequential_ms``,
  ``ensemble_ms``, ``speedup``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from timing import best_seconds

from sepbench import models

VOCAB, BATCH, TIME = 16, 64, 64
FAMILIES = ["elman", "lstm", "gru", "ssm", "transformer", "hybrid"]
SEEDS = list(range(8))


@pytest.fixture(autouse=True)
def _threads() -> object:
    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("SEPBENCH_THREADS", "1")))
    yield
    torch.set_num_threads(before)


def _data(shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, VOCAB, shape, generator=g), torch.randint(0, VOCAB, shape, generator=g)


def _single_step(family: str, width: int, seed: int = 0, **options: object) -> Callable[[], None]:
    model = models.build(family, VOCAB, width, seed=seed, **options)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = _data((BATCH, TIME))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1)).backward()
        opt.step()

    return step


def _sequential_steps(family: str, width: int) -> Callable[[], None]:
    steps = [_single_step(family, width, seed) for seed in SEEDS]

    def run() -> None:
        for step in steps:
            step()

    return run


def _ensemble_step(family: str, width: int) -> Callable[[], None]:
    ens = models.build_ensemble(family, VOCAB, width, SEEDS)
    opt = torch.optim.AdamW(ens.parameters(), lr=1e-3)
    x, y = _data((len(SEEDS), BATCH, TIME))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        logits = ens(x)
        # sum over members of each member's mean loss: every member gets its own gradient
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1)) * len(SEEDS)
        loss.backward()
        opt.step()

    return step


@pytest.mark.parametrize("width", [8, 32, 128])
@pytest.mark.parametrize("family", FAMILIES)
def test_train_step(benchmark, family: str, width: int) -> None:
    step = _single_step(family, width)
    step()
    benchmark.pedantic(step, rounds=5, warmup_rounds=1)
    ms = benchmark.stats.stats.min * 1e3
    benchmark.extra_info["ms"] = round(ms, 2)
    print(f"\n{family:<12} width {width:>4}: {ms:8.2f} ms/step")


def _race(
    first: Callable[[], None], first_rounds: int, second: Callable[[], None], second_rounds: int
) -> tuple[float, float]:
    """Best-of seconds of two steps timed interleaved, three times over (robust to a shared
    machine), after one warm-up call each."""
    first()
    second()
    t_first, t_second = float("inf"), float("inf")
    for _ in range(3):
        t_first = min(t_first, best_seconds(first, first_rounds))
        t_second = min(t_second, best_seconds(second, second_rounds))
    return t_first, t_second


QUANTISED: dict[str, dict[str, object]] = {
    "transformer": {"precision_bits": 8},
    "hybrid": {"state_bits": 4, "precision_bits": 8},
}


@pytest.mark.parametrize("width", [8, 32])
@pytest.mark.parametrize("family", FAMILIES)
def test_quantised_slowdown(benchmark, family: str, width: int) -> None:
    """Interleaved, best-of rounds: a training step with bounded precision against the same
    model unbounded (docs/precision.md)."""
    plain = _single_step(family, width)
    quantised = _single_step(family, width, **QUANTISED.get(family, {"state_bits": 4}))
    t_plain, t_quant = _race(plain, 2, quantised, 2)
    benchmark.pedantic(quantised, rounds=1, warmup_rounds=0)
    slowdown = t_quant / t_plain
    benchmark.extra_info.update(
        {"plain_ms": round(t_plain * 1e3, 2), "quantised_ms": round(t_quant * 1e3, 2)}
    )
    benchmark.extra_info["slowdown"] = round(slowdown, 2)
    print(
        f"\n{family:<12} width {width:>3}: plain {t_plain * 1e3:8.2f} ms, "
        f"quantised {t_quant * 1e3:8.2f} ms, slowdown {slowdown:5.2f}x"
    )


@pytest.mark.parametrize("width", [8, 32])
@pytest.mark.parametrize("family", FAMILIES)
def test_ensemble_speedup(benchmark, family: str, width: int) -> None:
    """Interleaved, best-of rounds (robust to a shared machine): 8 sequential steps vs one
    ensemble step of the same 8 seeds."""
    seq, ens = _sequential_steps(family, width), _ensemble_step(family, width)
    t_seq, t_ens = _race(seq, 1, ens, 2)
    benchmark.pedantic(ens, rounds=1, warmup_rounds=0)
    speedup = t_seq / t_ens
    benchmark.extra_info.update(
        {"sequential_ms": round(t_seq * 1e3, 1), "ensemble_ms": round(t_ens * 1e3, 1)}
    )
    benchmark.extra_info["speedup"] = round(speedup, 2)
    print(
        f"\n{family:<12} width {width:>3}: 8 sequential {t_seq * 1e3:8.1f} ms, "
        f"ensemble of 8 {t_ens * 1e3:8.1f} ms, speed-up {speedup:5.2f}x"
    )
