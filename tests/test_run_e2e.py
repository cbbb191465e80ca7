"""``edgesnn run`` end to end: train -> compress -> export C -> build -> launch -> eval ->
report, on the host build of the firmware and on QEMU Cortex-M3. The device must agree with
the golden simulator on every sample (prediction, counts, ops, spikes)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from edgesnn.cli import main

STAGES = ("edgesnn.snn.train", "edgesnn.compress", "edgesnn.export.c", "edgesnn.build",
          "edgesnn.host.launch", "edgesnn.devices")
missing = [m for m in STAGES if importlib.util.find_spec(m) is None]
pytestmark = [pytest.mark.skipif(bool(missing), reason=f"pipeline stages missing: {missing}"),
              pytest.mark.timeout(600)]  # training + QEMU; a hang fails instead of stalling
KEYS = ("samples", "device", "float_accuracy", "golden_accuracy", "device_accuracy",
        "agreement", "latency", "energy")


def _run(argv: list[str], capsys) -> dict:
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, "--json prints one object"
    return json.loads(out[0])


def _check(rep: dict, n: int, device: str) -> None:
    for k in KEYS:
        assert k in rep, k
    assert rep["samples"] == n and rep["device"] == device
    assert rep["failure_count"] == 0
    assert rep["agreement"] == 1.0, rep["agreement_detail"]["mismatches"]
    assert rep["device_accuracy"] == rep["golden_accuracy"]
    assert rep["golden_accuracy"] > 0.75  # a trained network, not chance (0.1)
    assert rep["float_golden_agreement"] > 0.9


def test_run_host_full_pipeline(tmp_path: Path, mnist_data_dir: Path, capsys) -> None:
    run_dir = tmp_path / "run"
    argv = ["run", "--out", str(run_dir), "--samples", "200", "--epochs", "1",
            "--train-limit", "6000", "--hidden", "64", "--steps", "10",
            "--data-dir", str(mnist_data_dir), "--json"]
    rep = _run(argv, capsys)
    _check(rep, 200, "host")
    assert rep["latency"]["unit_label"] == "ns (host)"
    assert all(not s["skipped"] for s in rep["stages"].values())
    for f in ("model.pt", "model.esg", "report.json", "report.html",
              "eval/host/samples.jsonl"):
        assert (run_dir / f).exists(), f
    # a second run is cheap: every producing stage is skipped
    again = _run(argv, capsys)
    assert [k for k, s in again["stages"].items() if s["skipped"]] == \
        ["train", "compress", "export+build", "launch+eval"]
    assert again["agreement"] == 1.0


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None or
                    shutil.which("arm-none-eabi-gcc") is None,
                    reason="qemu-system-arm / arm-none-eabi-gcc not installed")
def test_run_qemu_lm3s6965evb(tiny_esg_run: Path, tmp_path: Path, mnist_data_dir: Path,
                              capsys) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_esg_run, run_dir)
    # 500 real MNIST samples through the Cortex-M3 firmware, every one bit-exact with golden
    rep = _run(["run", "--out", str(run_dir), "--samples", "500", "--device", "lm3s6965evb",
                "--data-dir", str(mnist_data_dir), "--json"], capsys)
    _check(rep, 500, "lm3s6965evb")
    assert rep["stages"]["train"]["skipped"] and rep["stages"]["compress"]["skipped"]
    lat = rep["latency"]
    assert lat["unit_label"] == "instructions (QEMU)" and lat["clock_hz"] == 50_000_000
    assert rep["energy"]["device"]["available"]
    assert rep["memory"]["flash_bytes"] and rep["memory"]["flash_bytes"] < 262_144
