"""Biases end to end: ``edgesnn train --bias`` -> ``compress`` -> a 1.1 ``.esg`` whose layers
carry the trained ``nn.Linear`` biases, and the C runtime equals the golden simulator on it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgesnn.build import build_check_tool
from edgesnn.data import load_dataset
from edgesnn.graph import esg, golden


def _cli(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "edgesnn", *args], capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_train_bias_compress_and_run_in_c(tmp_path: Path, mnist_data_dir: Path) -> None:
    run = tmp_path / "run"
    _cli("train", "--out", str(run), "--bias", "--hidden", "16", "--steps", "6", "--epochs",
         "1", "--train-limit", "1000", "--test-limit", "200", "--data-dir", str(mnist_data_dir))
    from edgesnn.snn.checkpoint import load

    model, _ = load(run)
    assert model.config.bias and all(fc.bias is not None for fc in model.fcs)
    _cli("compress", str(run), "--data-dir", str(mnist_data_dir), "--test-limit", "200",
         "--calib-limit", "200")
    data = (run / "model.esg").read_bytes()
    assert esg.header_field(data, "version_minor") == 1
    graph = esg.decode(data)
    assert all(layer.bias is not None and np.any(layer.bias != 0) for layer in graph.layers)
    px = load_dataset("mnist", "test", mnist_data_dir, limit=100).images
    tool = build_check_tool(tmp_path / "tool")
    (tmp_path / "px.bin").write_bytes(np.ascontiguousarray(px).tobytes())
    proc = subprocess.run([str(tool), "infer", str(run / "model.esg"), str(tmp_path / "px.bin")],
                          capture_output=True, text=True, timeout=120, check=True)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    ref = golden.simulate(graph, px)
    for key in ("pred", "counts", "v_final", "spikes", "ops", "input_spikes"):
        assert np.array_equal(np.array([r[key] for r in rows]), getattr(ref, key)), key
