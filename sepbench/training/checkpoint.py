"""Checkpoints: one file holding the model's state dict and its JSON config.

Layout (a ``torch.save`` dict that ``torch.load(..., weights_only=True)`` can read — only
strings, ints and tensors)::

    {"format": "sepbench-checkpoint", "version": 1,
     "config": "<json: family, vocab_size, width, options>",   # rebuilds via models.build
     "metadata": "<json: e.g. {'result': TrialResult, ...}>",
     "state_dict": {name: tensor}}

The file is written to a temporary file in the destination directory, flushed and fsynced, then
moved into place with ``os.replace`` — a reader sees the old file or the new one, never half.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sepbench.errors import UserError
from sepbench.tasks import Task
from sepbench.training.config import TrialResult

FORMAT = "sepbench-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model, its config, and the saved metadata."""

    model: nn.Module
    config: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def result(self) -> TrialResult | None:
        data = self.metadata.get("result")
        return TrialResult.from_dict(data) if isinstance(data, dict) else None

    def trial_config(self) -> dict[str, Any]:
        """The training trial's config (task, length, ...) if the checkpoint has one."""
        data = self.metadata.get("result")
        if isinstance(data, dict) and isinstance(data.get("config"), dict):
            out: dict[str, Any] = data["config"]
            return out
        cfg = self.metadata.get("trial")
        return cfg if isinstance(cfg, dict) else {}

    def task(self) -> Task:
        """The task the model was trained on (from the saved trial config)."""
        from sepbench import tasks

        spec = self.trial_config().get("task")
        if not isinstance(spec, dict) or "name" not in spec:
            raise UserError("checkpoint: no task recorded in its metadata")
        return tasks.make(spec["name"], **spec.get("params", {}))


def _config(model: nn.Module) -> dict[str, Any]:
    config = getattr(model, "config", None)
    if not callable(config):
        raise UserError(f"cannot checkpoint {type(model).__name__}: it has no config()")
    out: dict[str, Any] = dict(config())
    return out


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    result: TrialResult | dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (state dict + config) and ``result``/``metadata`` to ``path``, atomically."""
    dest = Path(path)
    directory = dest.parent if str(dest.parent) else Path(".")
    if dest.is_dir():
        raise UserError(f"cannot write checkpoint {str(dest)!r}: it is a directory")
    if not directory.is_dir():
        raise UserError(
            f"cannot write checkpoint {str(dest)!r}: directory {str(directory)!r} does not exist"
        )
    meta: dict[str, Any] = dict(metadata or {})
    if result is not None:
        meta["result"] = result.to_dict() if isinstance(result, TrialResult) else dict(result)
    try:
        meta_json = json.dumps(meta)
        config_json = json.dumps(_config(model))
    except TypeError as exc:
        raise UserError(f"checkpoint metadata is not JSON-able: {exc}") from None
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": config_json,
        "metadata": meta_json,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=directory)
    except OSError as exc:
        raise UserError(f"cannot write checkpoint {str(dest)!r}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return dest


def load_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device | None = None
) -> Checkpoint:
    """Rebuild the model of a checkpoint with ``models.build`` and load its weights.

    Missing, unreadable, corrupt or mismatched files raise :class:`UserError`.
    """
    from sepbench import models

    src = Path(path)
    if not src.is_file():
        raise UserError(f"checkpoint {str(src)!r} does not exist")
    try:
        payload = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds on bad bytes
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"checkpoint {str(src)!r} is corrupt or not a checkpoint ({reason})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"checkpoint {str(src)!r} is not a sepbench checkpoint")
    if payload.get("version") != VERSION:
        raise UserError(
            f"checkpoint {str(src)!r} has version {payload.get('version')!r}; "
            f"this sepbench reads version {VERSION}"
        )
    try:
        config = json.loads(payload["config"])
        metadata = json.loads(payload["metadata"])
        state = payload["state_dict"]
        if not isinstance(config, dict) or not isinstance(metadata, dict):
            raise TypeError
        if any(key not in config for key in ("family", "vocab_size", "width")):
            raise KeyError
    except (KeyError, TypeError, ValueError):
        raise UserError(f"checkpoint {str(src)!r} is corrupt (bad config or metadata)") from None
    if not isinstance(state, dict):
        raise UserError(f"checkpoint {str(src)!r} is corrupt (no state dict)")
    model = models.from_config(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(
            f"checkpoint {str(src)!r} does not match its model config: {first}"
        ) from None
    if device is not None:
        from sepbench.training.fit import resolve_device

        model.to(resolve_device(device))
    model.eval()
    return Checkpoint(model, config, metadata)
