"""CLI conventions: --help everywhere, bad arguments exit 2 with one line, bugs exit 1 with one
line (the traceback only with -v)."""

from __future__ import annotations

import pytest

from edgesnn import cli


def test_every_command_has_help(capsys) -> None:
    sub = [a for a in cli.build_parser()._actions if a.dest == "command"][0]
    names = set(sub.choices)
    assert {"train", "evaluate", "compress", "export", "inspect", "build", "flash", "eval",
            "report", "run", "crossbar-sim", "import"} <= names
    for name in sorted(names):
        with pytest.raises(SystemExit) as exc:
            cli.main([name, "--help"])
        assert exc.value.code == 0
        assert "usage: edgesnn " + name in capsys.readouterr().out


def test_bad_argument_is_one_line_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["inspect"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "required" in err[0]


def test_unexpected_error_is_one_line_unless_verbose(monkeypatch, capsys, tmp_path) -> None:
    import edgesnn.commands.inspect as inspect_cmd

    def boom(args):
        raise RuntimeError("something broke")

    monkeypatch.setattr(inspect_cmd, "run", boom)
    assert cli.main(["inspect", str(tmp_path / "x.esg")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["edgesnn inspect: error: RuntimeError: something broke "
                   "(run with -v for the traceback)"]
    with pytest.raises(RuntimeError, match="something broke"):
        cli.main(["-v", "inspect", str(tmp_path / "x.esg")])


def _one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        rc = cli.main(argv)
    except SystemExit as exc:  # argparse errors
        rc = int(exc.code or 0)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    assert len(err) == 1, err
    return err[0]


def test_defects_refused_in_one_line_before_any_work(tmp_path, monkeypatch, capsys) -> None:
    """Issue 14 item 6: each one line, exit 2, before any data is read or a model built."""
    import edgesnn.data.datasets as datasets

    def no_data(*args, **kwargs):
        raise AssertionError("the command started working before checking its arguments")

    monkeypatch.setattr(datasets, "load_dataset", no_data)
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.pt").write_bytes(b"x")
    (run / "model.esg").write_bytes(b"x")
    a_file = tmp_path / "taken.txt"
    a_file.write_text("keep me")
    a_dir = tmp_path / "folder"
    a_dir.mkdir()

    assert "--hidden" in _one_line_exit_2(["train", "--out", str(tmp_path / "r"),
                                           "--hidden", "0"], capsys)
    assert "positive integer" in _one_line_exit_2(["train", "--out", str(tmp_path / "r"),
                                                   "--steps", "0"], capsys)
    msg = _one_line_exit_2(["train", "--out", str(a_file)], capsys)
    assert "is a file" in msg and a_file.read_text() == "keep me"
    msg = _one_line_exit_2(["compress", str(run / "model.esg")], capsys)
    assert "is a file" in msg and str(run) in msg
    msg = _one_line_exit_2(["export", str(run / "model.pt"), "--target", "onnx", "--out",
                            str(tmp_path / "m.onnx")], capsys)
    assert "is a file" in msg
    for target in ("onnx", "nir", "esg"):
        msg = _one_line_exit_2(["export", str(run), "--target", target, "--out", str(a_dir)],
                               capsys)
        assert "is a folder" in msg and f"--target {target} writes one file" in msg
    msg = _one_line_exit_2(["export", str(run), "--target", "c", "--device", "host", "--out",
                            str(a_file)], capsys)
    assert "is a file" in msg and "writes a folder" in msg
    msg = _one_line_exit_2(["inspect", str(tmp_path)], capsys)
    assert "folder without model.esg" in msg
    msg = _one_line_exit_2(["inspect", str(run)], capsys)  # a run dir: its model.esg is read
    assert f"{run / 'model.esg'} is not a valid .esg file" in msg


def test_inspect_takes_a_run_directory(tmp_path, capsys) -> None:
    import json

    from edgesnn.graph.esg import write_esg
    from edgesnn.graph.synth import random_graph

    write_esg(random_graph(0), tmp_path / "model.esg")
    assert cli.main(["inspect", str(tmp_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["path"] == str(tmp_path / "model.esg") and info["layers"]


def test_api_takes_what_the_cli_takes(tmp_path) -> None:
    """``hidden=64`` is ``--hidden 64``; bad values raise ValueError naming the option, before
    any data is read."""
    from edgesnn.snn.config import ConfigError, SNNConfig
    from edgesnn.snn.train import TrainError, TrainOptions, train

    assert SNNConfig(hidden=64).validate().hidden == [64]
    assert SNNConfig(hidden=(64, 32)).validate().layer_sizes == [784, 64, 32, 10]
    for bad in (0, [0], [64, -1], True, "64"):  # [] is one layer (a NIR import may be)
        with pytest.raises(ConfigError, match="hidden"):
            SNNConfig(hidden=bad).validate()  # type: ignore[arg-type]
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    with pytest.raises(TrainError, match="out="):
        train(SNNConfig(hidden=64), TrainOptions(), a_file, data_dir=tmp_path / "no-data")
    from edgesnn import api

    with pytest.raises(ValueError, match="is a file"):
        api.train(a_file, hidden=64, data_dir=tmp_path / "no-data")
    with pytest.raises(ValueError, match="hidden"):
        api.train(tmp_path / "new", hidden=0, data_dir=tmp_path / "no-data")


def test_api_export_refuses_the_wrong_kind_of_out_before_work(tmp_path) -> None:
    from edgesnn import api
    from edgesnn.export.base import ExportError

    with pytest.raises(ExportError, match="is a folder; --target onnx writes one file"):
        api.export(tmp_path / "no-run", "onnx", tmp_path)


def test_api_inspect_takes_a_run_directory(tmp_path) -> None:
    from edgesnn import api
    from edgesnn.graph.esg import write_esg
    from edgesnn.graph.synth import random_graph

    write_esg(random_graph(1), tmp_path / "model.esg")
    assert api.inspect(tmp_path) == api.inspect(tmp_path / "model.esg")
