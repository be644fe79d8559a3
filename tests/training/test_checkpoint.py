"""Checkpoints: round trip for every family, atomic writes, clear errors on bad files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from sepbench import models, tasks, training
from sepbench.errors import UserError

TASK = tasks.make("is_tree", trace="retrieval", max_length=8)
FAMILIES = {
    "elman": {"nonlinearity": "relu"},
    "lstm": {"layers": 2},
    "gru": {},
    "ssm": {},
    "transformer": {"layers": 2, "heads": 2, "pos": "rope"},
    "hybrid": {"base": "gru"},
    "rag": {"cell": "gru"},
    "grc": {},
    "bbt": {"readout": "every"},  # tree encoders answer a trace task only with readout=every
    "beam_tree": {"readout": "every", "beam": 2},
    "rir": {"readout": "every", "chunk": 3, "beam": 2},
    "looped": {"iterations": 2, "heads": 2, "injection": "concat"},
    "dtnet": {"iterations": 2},
}


def test_every_family_is_covered() -> None:
    assert set(FAMILIES) == set(models.families())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_round_trip_gives_the_same_logits(family: str, tmp_path: Path) -> None:
    model = models.build(family, len(TASK.vocab), 8, seed=1, **FAMILIES[family])
    budget = training.Budget(max_steps=3, batch_size=4, eval_every=100, confirm_batch=4)
    result = training.fit(model, TASK, 4, budget, seed=0)  # weights move away from the init
    path = tmp_path / "m.ckpt"
    training.save_checkpoint(path, model, result, metadata={"note": "x"})
    assert [p.name for p in tmp_path.iterdir()] == ["m.ckpt"]  # no temporary file left
    loaded = training.load_checkpoint(path)
    assert loaded.config == model.config()
    assert loaded.metadata["note"] == "x" and loaded.result == result
    assert type(loaded.model) is type(model)
    assert getattr(loaded.model, "uses_retrieval", False) == (family == "rag")
    assert loaded.task().params == TASK.params
    x = torch.from_numpy(TASK.sample(4, 3, seed=5).inputs)
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))


def test_missing_and_corrupt_files_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        training.load_checkpoint(tmp_path / "nope.ckpt")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="corrupt"):
        training.load_checkpoint(bad)
    model = models.build("gru", len(TASK.vocab), 4, seed=0)
    good = tmp_path / "good.ckpt"
    training.save_checkpoint(good, model)
    truncated = tmp_path / "trunc.ckpt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(UserError, match="corrupt"):
        training.load_checkpoint(truncated)
    other = tmp_path / "other.ckpt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(UserError, match="not a sepbench checkpoint"):
        training.load_checkpoint(other)
    # a config that does not match the weights
    payload = torch.load(good, weights_only=True)
    payload["config"] = payload["config"].replace('"width": 4', '"width": 5')
    mismatched = tmp_path / "mismatch.ckpt"
    torch.save(payload, mismatched)
    with pytest.raises(UserError, match="does not match"):
        training.load_checkpoint(mismatched)
    with pytest.raises(UserError, match="does not exist"):
        training.save_checkpoint(tmp_path / "no" / "dir.ckpt", model)


def test_a_failed_write_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = models.build("gru", len(TASK.vocab), 4, seed=0)
    path = tmp_path / "m.ckpt"
    training.save_checkpoint(path, model)
    before = path.read_bytes()

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        training.save_checkpoint(path, model)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.ckpt"]
