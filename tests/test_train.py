"""Training through the public API and the CLI: accuracy floors, run-dir files, resume,
checkpoint errors, CLI arguments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edgesnn.cli import main
from edgesnn.data import load_dataset
from edgesnn.snn import CheckpointError, SNNConfig, SpikingMLP, load, save
from edgesnn.snn.train import TrainOptions, evaluate, train
from tests.fixtures_train import TINY_CONFIG, TINY_OPTIONS, one_thread


def test_tiny_run_accuracy_and_files(tiny_run: Path, mnist_data_dir: Path) -> None:
    for name in ("model.pt", "config.json", "train.json"):
        assert (tiny_run / name).is_file()
    metrics = json.loads((tiny_run / "train.json").read_text())
    assert metrics["test_samples"] == 1000 and metrics["train_samples"] == 6000
    assert metrics["test_accuracy"] >= 0.85
    model, meta = load(tiny_run)
    assert model.config.hidden == [64] and model.config.steps == 10
    assert meta["dataset"] == "mnist" and meta["options"]["seed"] == 0
    assert len(meta["history"]) == TINY_OPTIONS["epochs"]
    with one_thread():
        acc = evaluate(model, load_dataset("mnist", "test", mnist_data_dir, 1000))
    assert acc == metrics["test_accuracy"]  # the saved model is the evaluated model
    assert json.loads((tiny_run / "config.json").read_text()) == model.config.to_dict()


def test_cli_evaluate_json(tiny_run: Path, mnist_data_dir: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    with one_thread():
        rc = main(["evaluate", str(tiny_run), "--test-limit", "1000", "--data-dir",
                   str(mnist_data_dir), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    expected = json.loads((tiny_run / "train.json").read_text())["test_accuracy"]
    assert out["test_accuracy"] == expected and out["test_samples"] == 1000


def test_train_10k_reaches_90_percent(tmp_path: Path, mnist_data_dir: Path) -> None:
    cfg = SNNConfig(hidden=[128], steps=10, slope=5.0)
    opts = TrainOptions(epochs=3, batch_size=64, train_limit=10000, test_limit=2000, seed=0,
                        progress=False)
    with one_thread():
        metrics = train(cfg, opts, tmp_path / "run", data_dir=mnist_data_dir)
    assert metrics["test_accuracy"] >= 0.90, metrics["test_accuracy"]


class _Crash(Exception):
    pass


def test_resume_after_crash_equals_uninterrupted(tmp_path: Path, mnist_data_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from edgesnn.snn import checkpoint

    cfg = SNNConfig(**{**TINY_CONFIG, "hidden": [16]})
    opts = {**TINY_OPTIONS, "train_limit": 1000, "test_limit": 200, "epochs": 2}
    with one_thread():
        full = train(cfg, TrainOptions(**opts), tmp_path / "full", mnist_data_dir)
        real_save = checkpoint.save

        def save_then_crash(*args, **kwargs):
            real_save(*args, **kwargs)
            raise _Crash  # the process dies right after the first epoch's checkpoint

        monkeypatch.setattr(checkpoint, "save", save_then_crash)
        with pytest.raises(_Crash):
            train(cfg, TrainOptions(**opts), tmp_path / "part", mnist_data_dir)
        monkeypatch.setattr(checkpoint, "save", real_save)
        assert not (tmp_path / "part" / "train.json").exists()
        assert torch.load(tmp_path / "part" / "model.pt", weights_only=True)["epoch"] == 0
        resumed = train(cfg, TrainOptions(**opts, resume=True), tmp_path / "part",
                        mnist_data_dir)
    assert [h["train_loss"] for h in resumed["history"]] == \
        [h["train_loss"] for h in full["history"]]
    a, _ = load(tmp_path / "full")
    b, _ = load(tmp_path / "part")
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    assert resumed["test_accuracy"] == full["test_accuracy"]


def test_checkpoint_roundtrip_and_errors(tmp_path: Path) -> None:
    model = SpikingMLP(SNNConfig(input_size=12, hidden=[5], n_classes=3, steps=4,
                                 learn_beta=True, per_neuron=True))
    save(tmp_path / "r", model, {"note": "x"})
    loaded, meta = load(tmp_path / "r")
    assert meta["note"] == "x"
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load(tmp_path / "missing")
    (tmp_path / "foreign").mkdir()
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign" / "model.pt")
    with pytest.raises(CheckpointError, match="not an edgesnn checkpoint"):
        load(tmp_path / "foreign")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "model.pt").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not an edgesnn checkpoint"):
        load(tmp_path / "junk")
    payload = torch.load(tmp_path / "r" / "model.pt", weights_only=True)
    payload["version"] = 99
    torch.save(payload, tmp_path / "r" / "model.pt")
    with pytest.raises(CheckpointError, match="newer"):
        load(tmp_path / "r")


def _cli(*args: str, env_data: Path) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "EDGESNN_DATA": str(env_data), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "edgesnn", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_train_json(tmp_path: Path, mnist_data_dir: Path) -> None:
    r = _cli("train", "--out", str(tmp_path / "run"), "--layers", "32,16", "--steps", "5",
             "--epochs", "1", "--train-limit", "500", "--test-limit", "100", "--neuron", "if",
             "--reset", "zero", "--augment-shift", "1", "--label-smoothing", "0.1", "--json",
             env_data=mnist_data_dir)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    metrics = json.loads(lines[0])
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["config"]["hidden"] == [32, 16] and metrics["config"]["beta"] == 1.0
    assert metrics["options"]["augment_shift"] == 1
    assert metrics["options"]["label_smoothing"] == 0.1
    model, _ = load(tmp_path / "run")
    assert model.config.neuron == "if" and model.config.reset == "zero"


@pytest.mark.parametrize("args", [
    ["--layers", "3,x"], ["--beta", "1.5"], ["--encoder", "poisson"], ["--epochs", "0"],
    ["--hidden", "8", "--layers", "8"], ["--neuron", "if", "--beta", "0.5"],
    ["--augment-shift", "20"], ["--label-smoothing", "1.0"],
])
def test_cli_bad_arguments(args: list[str], tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    try:
        rc = main(["train", "--out", str(tmp_path / "r"), *args])
    except SystemExit as exc:  # argparse errors
        rc = int(exc.code or 0)
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0]
    assert not (tmp_path / "r" / "model.pt").exists()


def test_cli_evaluate_missing_run(tmp_path: Path, mnist_data_dir: Path) -> None:
    r = _cli("evaluate", str(tmp_path), env_data=mnist_data_dir)
    assert r.returncode == 2 and "model.pt" in r.stderr


def test_random_shift_shapes_determinism_and_content() -> None:
    from edgesnn.snn.augment import AugmentError, random_shift

    gen = torch.Generator().manual_seed(0)
    imgs = torch.zeros((64, 28, 28), dtype=torch.uint8)
    imgs[:, 4:24, 4:24] = torch.randint(1, 256, (64, 20, 20), dtype=torch.uint8, generator=gen)
    flat = imgs.reshape(64, 784)
    a = random_shift(flat, 2, torch.Generator().manual_seed(7))
    b = random_shift(flat, 2, torch.Generator().manual_seed(7))
    c = random_shift(flat, 2, torch.Generator().manual_seed(8))
    assert a.shape == (64, 784) and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)
    # the 4-pixel blank border absorbs a 2-pixel shift: no pixel is lost or changed
    assert torch.equal(a.sum(1, dtype=torch.int64), flat.sum(1, dtype=torch.int64))
    assert torch.equal(torch.sort(a, 1).values, torch.sort(flat, 1).values)
    shifted = a.reshape(64, 28, 28)
    moves = set()
    for i in range(64):  # every output is the input moved by some (dy, dx) within +-2
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(shifted[i], torch.roll(imgs[i], (dy, dx), (0, 1)))]
        assert len(found) == 1, i
        moves.add(found[0])
    assert len(moves) > 10  # offsets really vary across the batch
    assert torch.equal(random_shift(flat, 0), flat)
    with pytest.raises(AugmentError, match="square"):
        random_shift(torch.zeros((2, 10), dtype=torch.uint8), 1)
    with pytest.raises(AugmentError, match="max_shift"):
        random_shift(flat, -1)


def test_train_options_reject_bad_augmentation() -> None:
    from edgesnn.snn.train import TrainError

    with pytest.raises(TrainError, match="augment_shift"):
        TrainOptions(augment_shift=-1).validate()
    with pytest.raises(TrainError, match="label_smoothing"):
        TrainOptions(label_smoothing=1.0).validate()
    TrainOptions(augment_shift=2, label_smoothing=0.1).validate()


def test_train_with_augmentation_is_reproducible(tmp_path: Path, mnist_data_dir: Path) -> None:
    cfg = SNNConfig(**{**TINY_CONFIG, "hidden": [16]})
    opts = {**TINY_OPTIONS, "train_limit": 1000, "test_limit": 200, "epochs": 1,
            "augment_shift": 2, "label_smoothing": 0.1}
    with one_thread():
        a = train(cfg, TrainOptions(**opts), tmp_path / "a", mnist_data_dir)
        b = train(cfg, TrainOptions(**opts), tmp_path / "b", mnist_data_dir)
        plain = train(cfg, TrainOptions(**{**opts, "augment_shift": 0}), tmp_path / "c",
                      mnist_data_dir)
    assert a["model_digest"] == b["model_digest"]
    assert a["model_digest"] != plain["model_digest"]
    assert a["options"]["augment_shift"] == 2 and a["test_accuracy"] >= 0.5
