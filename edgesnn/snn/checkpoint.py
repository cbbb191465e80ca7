"""Run-directory checkpoints: ``model.pt`` (+ ``config.json``), written atomically.

``model.pt`` is a dict: ``format="edgesnn-checkpoint"``, ``version``, ``config`` (the
:class:`SNNConfig` dict), ``state_dict``, ``meta`` (training provenance: data, seed, options,
edgesnn/torch versions, metrics...), optionally ``optimizer`` / ``scheduler`` state and
``epoch`` for resuming.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from edgesnn.atomic import atomic_file, write_json
from edgesnn.snn.config import ConfigError, SNNConfig
from edgesnn.snn.model import SpikingMLP

FORMAT = "edgesnn-checkpoint"
VERSION = 1
MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"


class CheckpointError(ValueError):
    """A missing, foreign or too-new checkpoint; the message names the file."""


def save(run_dir: Path | str, model: SpikingMLP, meta: dict[str, Any] | None = None, *,
         optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
         epoch: int | None = None) -> Path:
    """Write ``run_dir/model.pt`` and ``run_dir/config.json``; returns the model path."""
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    from edgesnn import __version__

    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": {"edgesnn_version": __version__, "torch_version": str(torch.__version__),
                 **(meta or {})},
    }
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        payload["scheduler"] = scheduler.state_dict()
    if epoch is not None:
        payload["epoch"] = int(epoch)
    path = run / MODEL_FILE
    with atomic_file(path) as tmp:
        torch.save(payload, tmp)
    write_json(run / CONFIG_FILE, model.config.to_dict())
    return path


def load_raw(run_dir: Path | str) -> dict[str, Any]:
    """The checked ``model.pt`` dict (for resuming: optimizer, scheduler, epoch)."""
    run = Path(run_dir)
    path = run / MODEL_FILE if run.is_dir() or not run.suffix else run
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint (expected a RUN_DIR holding {MODEL_FILE}; "
                              "create one with `edgesnn train --out RUN_DIR`)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a foreign file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not an edgesnn checkpoint ({first})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an edgesnn checkpoint (format "
                              f"{payload.get('format') if isinstance(payload, dict) else None!r},"
                              f" expected {FORMAT!r})")
    version = payload.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {version} is newer than this "
                              f"edgesnn reads ({VERSION}); upgrade edgesnn")
    return payload


def load(run_dir: Path | str) -> tuple[SpikingMLP, dict[str, Any]]:
    """Rebuild the model from ``run_dir/model.pt``; returns ``(model, meta)`` (eval mode)."""
    payload = load_raw(run_dir)
    try:
        config = SNNConfig.from_dict(payload["config"])
    except (ConfigError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{run_dir}: bad config in checkpoint ({exc})") from exc
    model = SpikingMLP(config)
    for name, value in payload.get("state_dict", {}).items():
        if torch.is_tensor(value) and value.is_floating_point() and \
                not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise CheckpointError(f"{run_dir}: parameter {name!r} holds {bad} NaN/inf value(s); "
                                  "the training diverged or the file was damaged")
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{run_dir}: state_dict does not match its config ({exc})") from exc
    model.eval()
    return model, dict(payload.get("meta", {}))
