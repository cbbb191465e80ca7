"""The public Python API mirrors the CLI and imports lazily."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import edgesnn
from edgesnn.graph.esg import write_esg
from edgesnn.graph.synth import random_graph


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
                 "report", "run"}
    assert api_names <= {c.rstrip("_") for c in COMMANDS}
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
