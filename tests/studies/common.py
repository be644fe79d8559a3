"""Small capacity specs for the studies tests (a fake probe or a few training steps)."""

from __future__ import annotations

import copy
from typing import Any

from sepbench.studies.capacity import CapacitySpec

BASE: dict[str, Any] = {
    "name": "cap",
    "kind": "capacity",
    "seed": 3,
    "train_lengths": [16, 32],
    "seeds": 2,
    "threshold": 0.99,
    "task": {"name": "passkey", "params": {"digits": 1}},
    "models": [
        {
            "family": "ssm",
            "sizes": [
                {"width": 4, "state_dim": 1},
                {"width": 8, "state_dim": 2},
                {"width": 16, "state_dim": 4},
            ],
        },
        {"family": "lstm", "sizes": [2, 8]},
    ],
    "budget": {"steps": 10, "batch_size": 8, "lr": 0.01},
    "evaluation": {
        "lengths": [16, 32, 64, 128, 256],
        "depths": [0.25, 0.75],
        "rows": 4,
        "recent_rows": 4,
        "mitigation_rows": 2,
        "trace_rows": 1,
        "trace_stride": 16,
        "calibration_rows": 4,
        "mitigations": [
            {"name": "forget_more", "decay_c": 4.0, "write_scale": 0.7},
            {"name": "state_norm", "norm_multiplier": 1.0},
            {"name": "window", "window_factor": 1.0},
        ],
    },
    "executor": {"kind": "inline"},
}


def cap_dict(**overrides: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(copy.deepcopy(overrides))
    return data


def make_cap(**overrides: Any) -> CapacitySpec:
    spec = CapacitySpec.from_dict(cap_dict(**overrides))
    assert isinstance(spec, CapacitySpec)
    return spec
