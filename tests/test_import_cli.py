"""``edgesnn import``: flags, --json, one-line errors, nothing written on failure."""

from __future__ import annotations

import json
from pathlib import Path

import nir
import numpy as np
import pytest

from edgesnn.cli import main


def _nir_file(path: Path, **override) -> Path:  # noqa: ANN003
    rng = np.random.default_rng(1)
    nodes = {"input": nir.Input(input_type=np.array([12])),
             "fc": nir.Linear(weight=rng.normal(size=(5, 12)).astype(np.float32)),
             "neuron": nir.IF(r=np.full(5, 1e4), v_threshold=np.full(5, 0.5)),
             "output": nir.Output(output_type=np.array([5]))}
    nodes.update(override)
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "neuron"),
                                             ("neuron", "output")], type_check=False)
    nir.write(str(path), graph)
    return path


def _recurrent_file(path: Path) -> Path:
    """A recurrent edge: neuron -> rec -> neuron."""
    rng = np.random.default_rng(1)
    nodes = {"input": nir.Input(input_type=np.array([12])),
             "fc": nir.Linear(weight=rng.normal(size=(5, 12)).astype(np.float32)),
             "neuron": nir.IF(r=np.full(5, 1e4), v_threshold=np.full(5, 0.5)),
             "rec": nir.Linear(weight=np.eye(5, dtype=np.float32)),
             "output": nir.Output(output_type=np.array([5]))}
    edges = [("input", "fc"), ("fc", "neuron"), ("neuron", "rec"), ("rec", "neuron"),
             ("neuron", "output")]
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    return path


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_import_json_and_run_dir(tmp_path: Path, capsys) -> None:
    f = _nir_file(tmp_path / "if.nir")
    out = tmp_path / "run"
    assert main(["import", str(f), "--out", str(out), "--json", "--steps", "7",
                 "--encoder", "latency", "--reset", "subtract"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["format"] == "nir" and summary["neuron"] == "if"
    assert (summary["steps"], summary["encoder"], summary["reset"]) == (7, "latency", "subtract")
    assert summary["input_size"] == 12 and summary["n_classes"] == 5 and summary["hidden"] == []
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "import.json", "model.pt"]
    config = json.loads((out / "config.json").read_text())
    assert config["neuron"] == "if" and config["steps"] == 7
    from edgesnn.snn.checkpoint import load

    model, meta = load(out)
    assert meta["imported"]["source"] == str(f)
    # IF: dv/dt = R I, forward Euler: scale R*dt = 1e4 * 1e-4 = 1 -> weights unchanged
    np.testing.assert_array_equal(model.fcs[0].weight.detach().numpy(),
                                  nir.read(str(f)).nodes["fc"].weight)
    assert _leftovers(tmp_path, {"if.nir", "run"}) == []


def test_dt_option_scales_if_input(tmp_path: Path) -> None:
    f = _nir_file(tmp_path / "if.nir")
    assert main(["import", str(f), "--out", str(tmp_path / "run"), "--dt", "2e-4"]) == 0
    from edgesnn.snn.checkpoint import load

    model, _ = load(tmp_path / "run")
    np.testing.assert_allclose(model.fcs[0].weight.detach().numpy(),
                               2 * nir.read(str(f)).nodes["fc"].weight, rtol=1e-6)


@pytest.mark.parametrize(("make", "needle"), [
    (lambda d: _nir_file(d / "a.nir", neuron=nir.Threshold(threshold=np.ones(5))),
     "unsupported NIR node(s): neuron (Threshold); supported: Input, Output, Flatten, Linear"),
    (lambda d: _nir_file(d / "b.nir", fc=nir.Linear(weight=np.full((5, 12), np.inf,
                                                                   np.float32))),
     "node 'fc': weight contains NaN or Inf"),
    (lambda d: _nir_file(d / "c.nir", fc=nir.Linear(weight=np.ones((5, 11), np.float32))),
     "node 'fc': weight has 11 inputs but the previous stage produces 12"),
    (lambda d: (d / "d.txt").write_text("x") and d / "d.txt",
     "unknown file type '.txt'; accepted: .nir, .onnx"),
    (lambda d: d / "missing.nir", "missing.nir not found"),
    (lambda d: _recurrent_file(d / "e.nir"),
     "node 'neuron' has 2 successors; only a feed-forward chain"),
    (lambda d: _nir_file(d / "f.nir", neuron=nir.LIF(
        tau=np.full(5, 1e-5), r=np.ones(5), v_leak=np.zeros(5), v_threshold=np.full(5, 0.5))),
     "node 'neuron': tau < dt gives beta = 1 - dt/tau < 0 (dt=0.0001)"),
    (lambda d: _nir_file(d / "g.nir", neuron=nir.IF(r=np.full(5, 1e4),
                                                    v_threshold=np.full(5, -0.5))),
     "node 'neuron': v_threshold must be >= 0"),
])
def test_errors_are_one_line_and_write_nothing(tmp_path: Path, capsys, make, needle: str) -> None:
    f = make(tmp_path)
    before = _leftovers(tmp_path, set())
    assert main(["import", str(f), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert needle in err, err
    assert err.count("\n") == 1 and err.startswith("edgesnn import: error:")
    assert _leftovers(tmp_path, set()) == before  # no run dir, no temp folder


def test_refuses_non_empty_out(tmp_path: Path, capsys) -> None:
    f = _nir_file(tmp_path / "if.nir")
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["import", str(f), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["import", str(f), "--out", str(empty)]) == 0
    assert (empty / "model.pt").is_file()


def test_help_lists_flags(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    text = capsys.readouterr().out
    for flag in ("--out", "--dt", "--reset", "--steps", "--encoder", "--json"):
        assert flag in text
