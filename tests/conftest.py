import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=True,
)
settings.register_profile(
    "dev", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def fake_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep's training probe replaced by a fake (LSTM width = 2N, others N): no training."""
    from sepbench.sweep import FakeProbe

    monkeypatch.setattr(
        "sepbench.sweep.probes.TrainingProbe",
        lambda device=None: FakeProbe(law="linear", coef={"lstm": 2.0}),
    )


@pytest.fixture
def fake_constructions(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[int]]]:
    """The constructive-width search replaced by a fake (width 3 + 2·bit_length(N)); returns
    the list of (construction, lengths) it was asked for."""
    from sepbench import constructions
    from sepbench.sweep.constructive import ConstructiveCurve

    calls: list[tuple[str, list[int]]] = []

    def fake(name: str, lengths: Any, params: Any = None, **kw: Any) -> ConstructiveCurve:
        calls.append((name, list(lengths)))
        points = tuple((n, 3 + 2 * n.bit_length()) for n in lengths)
        knob = "addr_dim" if name == "index_lookup_1layer" else None
        rid = constructions.get(name).result_id
        return ConstructiveCurve(name, "index_lookup", rid, knob, points, points)

    monkeypatch.setattr("sepbench.sweep.constructive.constructive_widths", fake)
    return calls


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """A tiny study file (``tiny.toml``: index_lookup, LSTM, N = 2, 4, 8) for the main job."""
    from tests.sweep.common import make_spec

    path = tmp_path / "tiny.toml"
    spec = make_spec(name="tiny", lengths=[2, 4, 8], models=[{"family": "lstm"}])
    path.write_text(spec.to_toml())
    return path
