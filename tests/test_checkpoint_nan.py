"""A checkpoint holding NaN/inf parameters is refused with the parameter's name, and neither
evaluation nor compression runs on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from edgesnn.cli import main
from edgesnn.snn.checkpoint import CheckpointError, load, save


def test_nan_weight_is_refused_by_name(tiny_run: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    model, meta = load(run)
    with torch.no_grad():
        model.fcs[0].weight[3, 5] = float("nan")
    save(run, model, meta)
    with pytest.raises(CheckpointError, match=r"fcs\.0\.weight.*1 NaN/inf"):
        load(run)
    assert main(["evaluate", str(run), "--test-limit", "10"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "NaN/inf" in err[0]
    assert main(["compress", str(run), "--test-limit", "10"]) == 2
    assert not (run / "model.esg").exists(), "nothing written on failure"
