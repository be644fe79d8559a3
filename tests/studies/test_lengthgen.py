"""The lengthgen study kind: spec errors, planning, scoring, the progressive objective, the
analysis rules (max / median over seeds, bins, read-out) and a tiny end-to-end run."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sepbench import models, studies, tasks, training
from sepbench.errors import UserError
from sepbench.studies.grid import plan_grid, point_rows, run_grid
from sepbench.studies.lengthgen import LengthgenSpec
from sepbench.studies.lengthgen_analysis import Bin, Run, Stat, curve_of, make_bins
from sepbench.studies.lengthgen_probe import (
    LengthgenProbe,
    Progressive,
    eval_rows,
    iteration_counts,
    row_scores,
    score_length,
)
from sepbench.sweep.store import Store


def lg_dict() -> dict[str, Any]:
    return {
        "name": "lg_test",
        "kind": "lengthgen",
        "seed": 3,
        "train_lengths": [8],
        "seeds": 2,
        "threshold": 0.99,
        "task": {"name": "prefix_sums"},
        "models": [
            {"family": "dtnet", "options": {"iterations": 2, "embed_dim": 4}, "sizes": [4]},
            {"family": "lstm", "sizes": [4]},
        ],
        "budget": {
            "steps": 3,
            "batch_size": 8,
            "lr": 1e-2,
            "mixture": {"min": 2},
            "options": {"warmup": 1, "eval_every": 2, "eval_batch": 8, "confirm_batch": 8},
        },
        "training": {"alpha": 0.5},
        "evaluation": {
            "lengths": [12, 16],
            "in_distribution": [8],
            "rows": 5,
            "iterations": [3],
        },
        "executor": {"kind": "inline"},
    }


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(UserError) as info:
        studies.from_dict(data)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------------- the spec
def test_spec_loads_by_kind_and_plans_every_cell() -> None:
    spec = studies.from_dict(lg_dict())
    assert isinstance(spec, LengthgenSpec)
    plan = plan_grid(spec)
    assert len(plan) == 2 * 2  # models × seeds
    plan_data = plan[0].config.evaluation
    assert plan_data["lengths"] == [12, 16] and plan_data["training"]["alpha"] == 0.5
    assert spec.train_min(8) == 2


def test_training_table_changes_keys_not_seeds() -> None:
    other = lg_dict()
    other["training"] = {}
    a, b = plan_grid(studies.from_dict(lg_dict())), plan_grid(studies.from_dict(other))
    assert [p.trial.seed for p in a] == [p.trial.seed for p in b]
    assert all(x.trial.key != y.trial.key for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda d: d["evaluation"].update(lengths=[8, 16]), "evaluation.lengths[0] = 8"),
        (lambda d: d["evaluation"].update(lengths=[4]), "not longer than the longest training"),
        (lambda d: d["evaluation"].update(in_distribution=[9]), "in_distribution[0] = 9"),
        (lambda d: d["evaluation"].update(iterations=[0]), "iteration count must be"),
        (lambda d: d["task"].update(name="nope"), "nope"),
        (lambda d: d["budget"].pop("mixture"), "budget.mixture"),
        (lambda d: d.update(training={"max_backprop": 2}), "max_backprop needs alpha"),
        (lambda d: d["training"].update(alpha=1.5), "alpha"),
    ],
)
def test_bad_specs_are_one_line_errors(edit: Any, needle: str) -> None:
    data = lg_dict()
    edit(data)
    assert needle in error_of(data)


def test_tree_model_on_a_per_token_task_is_refused() -> None:
    data = lg_dict()
    data["models"] = [{"family": "bbt", "sizes": [8]}]
    message = error_of(data)
    assert "models[0]" in message and "listops" in message


def test_tree_model_on_listops_is_accepted() -> None:
    data = lg_dict()
    data["task"] = {"name": "listops"}
    data["train_lengths"] = [16]
    data["budget"]["mixture"] = {"min": 8}
    data["evaluation"] = {"lengths": [24], "in_distribution": [16]}
    data["models"] = [{"family": "bbt", "sizes": [8]}]
    assert "options.pad_id = 0" in error_of(data)  # padded held-out rows need it
    data["models"] = [{"family": "bbt", "options": {"pad_id": 0}, "sizes": [8]}]
    assert isinstance(studies.from_dict(data), LengthgenSpec)


# ---------------------------------------------------------------------------------- scoring
def test_row_scores_count_rows_and_supervised_tokens() -> None:
    targets = torch.tensor([[1, 2, -100], [2, 2, 1]])
    ignore = -100
    from sepbench.tasks.base import IGNORE

    targets = targets.masked_fill(targets == ignore, IGNORE)
    pred = torch.tensor([[1, 2, 0], [2, 1, 1]])
    logits = torch.nn.functional.one_hot(pred, 4).float()
    ok, right, supervised = row_scores(logits, targets)
    assert ok.tolist() == [True, False]  # the ignored position does not count
    assert (right, supervised) == (4, 5)


def test_eval_rows_are_common_and_seeded() -> None:
    task = tasks.make("prefix_sums")
    a, b = eval_rows(task, 12, 6, 0), eval_rows(task, 12, 6, 0)
    assert np.array_equal(a.inputs, b.inputs)
    assert not np.array_equal(a.inputs, eval_rows(task, 12, 6, 1).inputs)


def test_depth_scores_per_iteration_equal_separate_forwards() -> None:
    task = tasks.make("prefix_sums")
    model = models.build("dtnet", len(task.vocab), 6, seed=1, options={"iterations": 2})
    from sepbench.studies.lengthgen import Evaluation

    ev = Evaluation(lengths=[10], iterations=[1, 5])
    counts = iteration_counts(model, ev)
    assert counts == [1, 2, 5]
    batch = eval_rows(task, 10, 7, 0)
    scored = score_length(model, batch, counts)
    x, y = torch.from_numpy(batch.inputs), torch.from_numpy(batch.targets)
    model.eval()
    for c in counts:
        with torch.no_grad():
            alone = row_scores(model(x, iterations=c), y)
        assert np.array_equal(scored[c][0], alone[0]) and scored[c][1:] == alone[1:]
    lstm = models.build("lstm", len(task.vocab), 4, seed=1)
    assert iteration_counts(lstm, ev) == [None]


def test_progressive_objective_is_used_by_the_trainer() -> None:
    """α = 1 with the objective trains other weights than the plain loss (it runs fewer
    iterations with gradient), and the objective is deterministic for a seed."""
    task = tasks.make("prefix_sums")
    budget = training.Budget(max_steps=4, batch_size=8, warmup=1, eval_every=100)

    def trained(objective: Any) -> dict[str, torch.Tensor]:
        model = models.build("dtnet", len(task.vocab), 4, seed=2, options={"iterations": 4})
        training.fit(model, task, 8, budget, 0, 1.0, threads=1, objective=objective)
        return copy.deepcopy(model.state_dict())

    plain = trained(None)
    prog_a = trained(Progressive(1.0, None, seed=5))
    prog_b = trained(Progressive(1.0, None, seed=5))
    assert all(torch.equal(prog_a[k], prog_b[k]) for k in plain)
    assert any(not torch.equal(plain[k], prog_a[k]) for k in plain)


# ---------------------------------------------------------------------------------- analysis
def run(rep: int, acc: dict[int, float], iterations: int | None = None) -> Run:
    return Run("m", "lstm", "{}", 8, rep, iterations, True, 1.0, acc=acc)


def test_bins_follow_the_spec() -> None:
    bins = make_bins(2, 8, [12, 16, 17, 30], 8)
    assert [(b.lo, b.hi, b.in_distribution) for b in bins] == [
        (2, 8, True),
        (8, 16, False),
        (16, 24, False),
        (24, 32, False),
    ]
    assert bins[0].holds(2) and bins[0].holds(8) and not bins[1].holds(8) and bins[1].holds(16)


def test_max_median_ood_and_readout() -> None:
    runs = [
        run(0, {8: 1.0, 12: 1.0, 16: 0.95, 24: 0.1}),
        run(1, {8: 1.0, 12: 0.5, 16: 0.0, 24: 0.0}),
        run(2, {8: 0.9, 12: 0.2, 16: 0.1, 24: 0.0}),
    ]
    bins = make_bins(2, 8, [12, 16, 24], 8)
    c = curve_of(runs, 2, bins)
    assert c.lengths == (8, 12, 16, 24)
    assert c.by_length[1] == Stat(1.0, 0.5)
    assert c.ood.maximum == pytest.approx((1.0 + 0.95 + 0.1) / 3)
    assert c.ood.median == pytest.approx(0.5 / 3)
    assert c.solved == 0  # no seed's OOD mean reaches 0.9
    assert c.readout == 16 and c.readout_median == 0.1  # best seed ≥ 0.9 up to 16
    assert c.bins[1] == (Bin("(8, 16]", 8, 16, False), Stat(0.975, 0.25))


# ---------------------------------------------------------------------------------- end to end
def test_tiny_study_runs_stores_points_and_reports(tmp_path: Path) -> None:
    from sepbench.report.grids import write_grid_report

    spec = studies.from_dict(lg_dict())
    assert isinstance(spec, LengthgenSpec)
    summary = run_grid(spec, LengthgenProbe(), tmp_path, progress=False)
    assert summary.complete and summary.trials == 4
    with Store.open(summary.store_path) as store:
        columns, rows = point_rows(store)
    records = [dict(zip(columns, r, strict=True)) for r in rows]
    dt = [r for r in records if r["family"] == "dtnet"]
    lstm = [r for r in records if r["family"] == "lstm"]
    # dtnet: 3 lengths × iterations {2, 3}; lstm: 3 lengths × one (None) per seed
    assert len(dt) == 2 * 3 * 2 and {r["iterations"] for r in dt} == {2, 3}
    assert len(lstm) == 2 * 3 and {r["iterations"] for r in lstm} == {None}
    assert {r["length"] for r in records} == {8, 12, 16}
    assert all(r["rows"] == 5 and len(r["hits"]) == 5 for r in records)
    assert {r["in_distribution"] for r in records if r["length"] == 8} == {True}
    report = write_grid_report(summary.store_path, tmp_path / "report", formats=("png",))
    text = report.read_text()
    assert "Trained on lengths [2, 8]" in text and "(8, 16]" in text
    assert (report.parent / "points.csv").read_text().count("\n") == len(records) + 1
    # resumable: nothing is rerun
    again = run_grid(spec, LengthgenProbe(), tmp_path, progress=False)
    assert again.new_trials == 0


# ---------------------------------------------------------------------------------- shipped
@pytest.mark.parametrize(
    "name", ["prefix_sums", "addition", "listops", "listops_rvnn", "listops_rvnn_full"]
)
def test_shipped_studies_follow_the_protocol(name: str) -> None:
    spec = studies.load_shipped(name)
    assert isinstance(spec, LengthgenSpec)
    longest = max(spec.train_lengths)
    assert max(spec.evaluation.lengths) >= 4 * longest  # DE23 / lengthgen.md: to >= 4L
    assert len({len(spec.seeds)}) == 1 and len(spec.seeds) >= 2
    quick = spec.quick()
    assert quick.name == name + "-quick" and len(plan_grid(quick)) < len(plan_grid(spec))


def test_cli_bad_spec_exits_2_with_one_line(tmp_path: Path, capsys: Any) -> None:
    from sepbench.cli import main

    data = lg_dict()
    data["evaluation"]["lengths"] = [6]
    path = tmp_path / "bad.toml"
    from sepbench.sweep.spec import _to_toml

    path.write_text(_to_toml(data))
    assert main(["run", "--study", str(path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "evaluation.lengths[0] = 6" in err[0]
