"""The public Python API mirrors the CLI and imports lazily."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import edgesnn
from edgesnn.graph.esg import write_esg
from edgesnn.graph.synth import random_graph

pytestmark = pytest.mark.timeout(120)  # a hang fails instead of stalling the suite


def test_import_loads_neither_torch_nor_serial() -> None:
    code = ("import sys, edgesnn; edgesnn.simulate; edgesnn.read_esg; "
            "assert 'torch' not in sys.modules and 'serial' not in sys.modules, "
            "[m for m in sys.modules if m.startswith(('torch', 'serial'))]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_api_names_follow_the_cli() -> None:
    import edgesnn.build
    import edgesnn.compress
    import edgesnn.export
    import edgesnn.report  # noqa: F401 - subpackages bound on edgesnn must not hide the API
    from edgesnn import api
    from edgesnn.cli import COMMANDS

    api_names = {"train", "evaluate", "compress", "export", "inspect", "build", "eval",
                 "report", "run", "crossbar_sim", "import_", "tune"}
    # flash programs a board with the profile's flasher tool (interactive, foreground): its
    # API face is launch (emulated and host devices); devices lists profiles: load_device
    assert api_names == set(COMMANDS) - {"flash", "devices"}, "one API function per command"
    for name in api_names | {"launch"}:
        assert callable(getattr(api, name)), name
    for name in api_names - {"compress", "export", "build", "report"} | {
            "load_dataset", "simulate", "load_device"}:
        assert callable(getattr(edgesnn, name)), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        edgesnn.nope  # noqa: B018


def test_inspect_and_export_through_the_api(tmp_path: Path) -> None:
    graph = random_graph(3, input_size=30, hidden=(12,), n_classes=4, steps=5)
    write_esg(graph, tmp_path / "model.esg")
    from edgesnn import api

    info = edgesnn.inspect(tmp_path / "model.esg")
    assert [layer["n_out"] for layer in info["layers"]] == [12, 4]
    out = api.export(tmp_path, "esg", tmp_path / "copy.esg")
    assert (tmp_path / "copy.esg").read_bytes() == (tmp_path / "model.esg").read_bytes()
    assert out["bytes"] == (tmp_path / "copy.esg").stat().st_size


def test_train_rejects_unknown_options(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="unknown train option"):
        edgesnn.train(tmp_path / "run", hiden=[64])


def test_train_takes_hidden_as_the_cli_does(tmp_path: Path) -> None:
    for bad in (0, [64, 0], "64", True):  # [] is one layer straight to the classes
        with pytest.raises(ValueError, match="hidden="):
            edgesnn.train(tmp_path / "run", hidden=bad)
    assert not (tmp_path / "run").exists(), "refused before any work"


def test_eval_returns_what_eval_json_prints(tmp_path: Path, mnist_data_dir: Path,
                                            capsys) -> None:
    import json

    from edgesnn.cli import main

    write_esg(random_graph(5, input_size=784, hidden=(16,), n_classes=10, steps=4),
              tmp_path / "model.esg")
    rep = edgesnn.eval(tmp_path, "sim", samples=20, data_dir=mnist_data_dir)
    assert main(["eval", str(tmp_path), "--device", "sim", "--samples", "20", "--data-dir",
                 str(mnist_data_dir), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    for key in ("latency", "devices"):  # timings differ between two runs
        rep.pop(key)
        printed.pop(key)
    assert json.loads(json.dumps(rep, default=str)) == printed
    summary = edgesnn.eval(tmp_path, ["sim"], samples=5, data_dir=mnist_data_dir, report=False)
    assert summary["samples"] == 5 and summary["devices"]["sim"]["link"]["ok"] == 5
    with pytest.raises(ValueError, match="--timeout"):
        edgesnn.eval(tmp_path, ["sim"], timeout=-1)


def test_build_takes_the_cli_options(tmp_path: Path) -> None:
    from edgesnn import api

    with pytest.raises(ValueError, match="--make-arg expects VAR=VALUE"):
        api.build(tmp_path, make_arg=["NOEQUALS"])
    with pytest.raises(ValueError, match="does not exist"):
        api.build(tmp_path / "missing", clean=True)


def test_build_cleans_and_passes_make_args(tmp_path: Path) -> None:
    import shutil

    from edgesnn import api

    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("gcc/make not installed")
    write_esg(random_graph(3, input_size=30, hidden=(12,), n_classes=4, steps=5),
              tmp_path / "model.esg")
    api.export(tmp_path, "c", tmp_path / "fw", device="host")
    first = api.build(tmp_path / "fw")
    again = api.build(tmp_path / "fw", clean=True, make_arg=["EXTRA_CFLAGS=-DESNN_API_TEST=1"])
    assert again["elf"] == first["elf"] and again["flash_bytes"] > 0
