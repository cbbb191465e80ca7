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
