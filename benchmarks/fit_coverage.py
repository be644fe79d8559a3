"""Coverage of fit_growth's 95 % interval for α on the shipped study designs (a measurement).

    .venv/bin/python benchmarks/fit_coverage.py [--reps 400] [--out docs/theory-coverage.json]
    .venv/bin/python -m sepbench.theory.docs      # renders the table into docs/theory.md

1. σ, the seed-to-seed spread of ln w, is estimated from the stored main study
   (docs/results/index_lookup/index_lookup.sqlite: every (model, N) with a finite answer,
   its seeds' grid intervals; :func:`sepbench.theory.coverage.seed_spread`).
2. Every scenario — lengths × seeds × true α, on the shipped geometric grid (widths 1..64,
   2 per octave: ``sweep.search.Grid(1, 64, per_octave=2)``), censoring at its maximum — is
   simulated ``--reps`` times (:func:`sepbench.theory.coverage.simulate`), each with its own
   seed, at σ = the estimate, and at half and 1.5 times it for two seeds per length.
3. The rows and the estimate go to ``--out`` as JSON; docs/theory.md's table is rendered
   from that file.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from sepbench.sweep.plan import plan_study
from sepbench.sweep.search import Grid
from sepbench.sweep.store import Store
from sepbench.sweep.summary import summarize
from sepbench.theory import coverage, fits

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "docs" / "results" / "index_lookup" / "index_lookup.sqlite"
LENGTHS = ((2, 4, 8), (4, 6, 8), (4, 8, 16, 32), (8, 16, 32, 64), (2, 4, 8, 16, 32),
           (2, 4, 8, 16, 32, 64))  # fmt: skip
"""The shipped designs (index_lookup-quick, is_tree, associative_recall/string_equality,
dyck, index_lookup) and one more doubling."""
SEEDS = (2, 3, 5)
ALPHAS = (0.0, 0.5, 1.0)
W0 = 4.0
"""The width at the smallest N: 3–8 in the stored study."""


def measured_spread() -> coverage.Spread:
    store = Store.open(STORE)
    try:
        summary = summarize(store)
        plans = {p.search_key: p for p in plan_study(store.spec())}
    finally:
        store.close()
    groups: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
    for s in summary.searches:
        if s.status == "incomplete":
            continue
        grid = plans[s.search_key].grid.widths()
        answer = s.width if s.status == "done" else None
        groups[(s.model, s.length)].append(fits.interval_from_grid(answer, grid))
    return coverage.seed_spread(list(groups.values()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=400)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "theory-coverage.json")
    args = parser.parse_args(argv)
    spread = measured_spread()
    sigma = round(spread.sigma, 2)
    grid = tuple(float(w) for w in Grid(1, 64, per_octave=2).widths())
    scenarios = [
        coverage.Scenario(n, s, a, W0, sigma, grid) for n in LENGTHS for s in SEEDS for a in ALPHAS
    ]
    scenarios += [
        coverage.Scenario(n, 2, a, W0, round(sigma * f, 2), grid)
        for f in (0.5, 1.5)
        for n in LENGTHS
        for a in ALPHAS
    ]
    rows = []
    start = time.perf_counter()
    for i, sc in enumerate(scenarios):
        c = coverage.simulate(sc, args.reps, seed=1000 + i)
        rows.append(
            {
                "lengths": list(sc.lengths),
                "seeds": sc.seeds,
                "alpha": sc.alpha,
                "w0": sc.w0,
                "sigma": sc.sigma,
                "reps": c.reps,
                "fitted": c.fitted,
                "covered": c.covered,
                "rate": round(c.rate, 4),
                "open_ended": c.open_ended,
                "median_width": round(c.median_width, 3),
                "censored_fraction": round(c.censored_fraction, 3),
            }
        )
        print(f"{sc.label()}: {c.rate:.3f} ({c.covered}/{c.fitted})", flush=True)
    out = {
        "command": "python benchmarks/fit_coverage.py --reps " + str(args.reps),
        "level": 0.95,
        "grid": list(grid),
        "spread": {
            "sigma": round(spread.sigma, 4),
            "sigma_mle": round(spread.sigma_mle, 4),
            "groups": spread.groups,
            "points": spread.points,
            "store": str(STORE.relative_to(ROOT)),
        },
        "seconds": round(time.perf_counter() - start, 1),
        "rows": rows,
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out} ({out['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
