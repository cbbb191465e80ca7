"""``edgesnn run``'s default network is the measured best for a microcontroller: direct
encoding, T = 8 (96.05 % on MNIST against rate encoding's 96.17 % at T = 12, with about 6x
fewer Cortex-M3 instructions per inference). Parsing only; nothing is trained."""

from __future__ import annotations

import json

import pytest

from edgesnn import cli
from edgesnn.pipeline import chain
from edgesnn.pipeline.chain import RunOptions


def _parsed_options(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> RunOptions:
    """The RunOptions ``edgesnn run ARGV --json`` hands the pipeline (which is not run)."""
    seen: list[RunOptions] = []

    def no_pipeline(opts: RunOptions, say=None) -> dict:
        opts.check()
        seen.append(opts)
        return {}

    import edgesnn.commands.run as run_cmd

    monkeypatch.setattr(run_cmd, "run_pipeline", no_pipeline)
    assert cli.main(["run", *argv, "--json"]) == 0
    return seen[0]


def test_default_run_is_direct_t8(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    assert (RunOptions().encoder, RunOptions().steps) == ("direct", 8)
    opts = _parsed_options(["--out", str(tmp_path / "r")], monkeypatch)
    assert (opts.encoder, opts.steps) == ("direct", 8)


def test_encoder_option_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    opts = _parsed_options(["--out", str(tmp_path / "r"), "--encoder", "rate", "--steps", "12",
                            "--json"], monkeypatch)
    assert (opts.encoder, opts.steps) == ("rate", 12)


def test_bad_encoder_is_refused_in_one_line(capsys: pytest.CaptureFixture[str],
                                            tmp_path) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "--encoder", "poisson"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--encoder" in err[0]
    with pytest.raises(ValueError, match=r"^--encoder 'poisson': accepted rate, latency, "
                                         r"direct$"):
        RunOptions(encoder="poisson").check()
    import edgesnn

    with pytest.raises(ValueError, match="--encoder"):  # the API, before any work
        edgesnn.run(tmp_path / "r", encoder="poisson")
    assert not (tmp_path / "r").exists()


def test_encoder_decides_whether_a_kept_run_is_current(tmp_path, monkeypatch) -> None:
    """A kept model trained with another encoder is retrained; a run kept from before the
    option (no encoder in run.json) counts as rate encoded."""
    import edgesnn.snn.train as train_mod

    trained: list[str] = []

    class Stop(Exception):
        pass

    def fake_train(cfg, topts, run_dir, data_dir=None):
        trained.append(cfg.encoder)
        raise Stop

    monkeypatch.setattr(train_mod, "train", fake_train)
    run = tmp_path / "r"
    run.mkdir()
    (run / "model.pt").write_bytes(b"x")
    old = {"hidden": 128, "steps": 12, "epochs": 1, "train_limit": 60_000}
    (run / chain.STATE).write_text(json.dumps({"train": old}))

    def stage_1(**kw) -> bool:  # True: the train stage was skipped as current
        said: list[str] = []
        with pytest.raises(chain.StageError):  # Stop, or a later stage on the fake model.pt
            chain.run_pipeline(RunOptions(out=run, **kw), say=said.append)
        return "[1/5] train: up to date, skipped" in said

    assert not stage_1() and trained == ["direct"]
    trained.clear()
    assert stage_1(encoder="rate", steps=12) and trained == []
