"""``edgesnn evaluate RUN --predictions FILE.json`` (issue 10 item 6): the predicted labels as
a JSON list in test-set order, equal to the model's own predictions; bad paths refused
before any work, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from edgesnn.cli import main


def test_predictions_file_holds_the_models_labels(tiny_run: Path, data_dir: Path,
                                                  tmp_path: Path, capsys) -> None:
    from edgesnn.data import load_dataset
    from edgesnn.snn.checkpoint import load

    out = tmp_path / "pred.json"
    assert main(["evaluate", str(tiny_run), "--test-limit", "300", "--data-dir", str(data_dir),
                 "--predictions", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    labels = json.loads(out.read_text())
    assert isinstance(labels, list) and len(labels) == 300
    assert all(isinstance(x, int) and 0 <= x < 10 for x in labels)
    data = load_dataset("mnist", "test", data_dir, 300)
    # the file's labels give the reported accuracy ...
    assert np.mean(np.array(labels) == data.labels) == summary["test_accuracy"]
    assert summary["predictions"] == str(out)
    # ... and are the model's own predictions, sample by sample, in test-set order
    model, _ = load(tiny_run)
    with torch.no_grad():
        own = model.forward_pixels(torch.from_numpy(data.images)).prediction().numpy()
    assert labels == [int(x) for x in own]
    assert 0.5 < summary["test_accuracy"] <= 1.0


def test_bad_predictions_path_refused_before_work(tiny_run: Path, tmp_path: Path,
                                                  capsys) -> None:
    for bad, why in ((tmp_path, "is a folder"),
                     (tmp_path / "missing" / "p.json", "does not exist")):
        assert main(["evaluate", str(tiny_run), "--predictions", str(bad)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--predictions" in err[0] and why in err[0], err
    assert not (tmp_path / "missing").exists()
