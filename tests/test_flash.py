"""``edgesnn flash --dry-run`` prints the exact commands and starts nothing; ``edgesnn devices``
lists every profile with how it is flashed and reached."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgesnn.cli import main as cli_main
from edgesnn.devices import list_devices, load_device
from edgesnn.export.c import TARGET as C_TARGET
from edgesnn.graph.esg import write_esg
from edgesnn.graph.synth import random_graph


@pytest.fixture
def project(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_esg(random_graph(3, input_size=16, hidden=(8,), n_classes=4, steps=4),
              run_dir / "model.esg")
    return run_dir


def _no_process(*args: object, **kwargs: object) -> None:
    raise AssertionError(f"--dry-run started a process: {args}")


@pytest.mark.parametrize("device", ["lm3s6965evb", "microbit", "arduino-mega2560", "host"])
def test_dry_run_prints_commands_and_starts_nothing(device: str, project: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"fw-{device}"
    C_TARGET.export(project, out, device=device)
    import edgesnn.host.launch as launch_mod

    monkeypatch.setattr(launch_mod, "_start", _no_process)
    monkeypatch.setattr(launch_mod, "launch", _no_process)
    code = cli_main(["flash", str(out), "--device", device, "--detach", "--dry-run", "--json"])
    info = json.loads(capsys.readouterr().out)
    assert code == 0 and info["ran"] is False
    build, step = info["commands"]
    assert build == ["make", "-C", str(out.resolve())]
    profile = load_device(device)
    elf = str(out.resolve() / ("firmware" if device == "host" else "firmware.elf"))
    assert info["firmware"] == elf
    assert not (out / "build").exists(), "--dry-run must not build"
    if device == "host":
        assert step == [elf, "--pty"]
    elif device == "arduino-mega2560":  # the simavr bridge the build puts next to the ELF
        assert step == [str(out.resolve() / "esnn_simavr"), "-m", "atmega2560", "-f",
                        "16000000", elf]
    else:
        assert step[:3] == ["qemu-system-arm", "-M", profile.run.machine]
        assert step[step.index("-kernel") + 1] == elf
        assert step[step.index("-icount") + 1] == f"shift={profile.run.icount_shift},sleep=off"
        assert step[-2:] == ["-serial", "tcp:127.0.0.1:PORT,server=on,wait=on,nodelay=on"]
    # the text form prints the same two command lines
    assert cli_main(["flash", str(out), "--device", device, "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert f"make -C {out.resolve()}" in text and step[0] in text


def test_physical_board_without_flasher_says_how_to_install(project: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture
                                                            [str]) -> None:
    """A missing flasher: exit 1 with the exact command and where the tool comes from."""
    import shutil

    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    out = tmp_path / "fw"
    C_TARGET.export(project, out, device="nucleo-l4r5zi")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # make and the cross compiler, no pyocd
    if shutil.which("pyocd") is not None:
        pytest.skip("pyocd is installed here")
    assert cli_main(["flash", str(out), "--device", "nucleo-l4r5zi", "--json"]) == 1
    info = json.loads(capsys.readouterr().out)
    assert info["ran"] is False and "pip install pyocd" in info["reason"]
    assert info["command"][:4] == ["pyocd", "flash", "--target", "stm32l4r5zitx"]


def test_devices_lists_every_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["devices", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(list_devices())
    for name, row in rows.items():
        p = load_device(name)
        assert (row["core"], row["clock_hz"], row["flash_bytes"], row["ram_bytes"]) == (
            p.core.arch, p.core.clock_hz, p.memory.flash_bytes, p.memory.ram_bytes)
    assert rows["microbit"]["where"] == "emulated" and rows["microbit"]["core"] == "cortex-m0"
    assert rows["mps2-an505"]["core"] == "cortex-m33"
    assert rows["mps3-an547"]["core"] == "cortex-m55"
    assert rows["nucleo-l4r5zi"]["where"] == "physical"
    assert rows["nucleo-l4r5zi"]["flasher"] == "pyocd"
    assert rows["host"]["where"] == "host"
    for row in rows.values():
        if row["where"] == "physical":
            assert row["flasher"] in ("pyocd", "openocd", "avrdude", "picotool"), row
    assert cli_main(["devices"]) == 0
    table = capsys.readouterr().out
    assert "microbit" in table and "runs in qemu-system-arm (microbit)" in table


def test_devices_command_does_not_import_torch() -> None:
    code = ("import sys; from edgesnn.cli import main; rc = main(['devices']); "
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1]).stdout
    assert out.strip().splitlines()[-1] == "NO-TORCH 0"


@pytest.mark.parametrize(("device", "flasher"), [
    ("bbc-microbit-v1", ["pyocd", "flash", "--target", "nrf51"]),
    ("arduino-mega2560-board", ["avrdude", "-p", "atmega2560", "-c", "wiring"]),
    ("nucleo-l4r5zi", ["pyocd", "flash", "--target", "stm32l4r5zitx"]),
])
def test_physical_boards_dry_run_names_the_flasher(device: str, flasher: list[str],
                                                   project: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fw"
    C_TARGET.export(project, out, device=device)
    real_run = subprocess.run

    def only_queries(cmd: list[str], *args: object, **kwargs: object) -> object:
        if cmd[:1] == ["make"] and cmd[-1] == "print-vars":  # asks make for the image name
            return real_run(cmd, *args, **kwargs)  # type: ignore[call-overload]
        raise AssertionError(f"--dry-run ran {cmd}")

    monkeypatch.setattr(subprocess, "run", only_queries)  # no build, no flasher
    assert cli_main(["flash", str(out), "--device", device, "--dry-run", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    build, step = info["commands"]
    assert build == ["make", "-C", str(out.resolve())]
    elf = str(out.resolve() / "firmware.elf")
    assert step[:len(flasher)] == flasher and any(elf in a for a in step), step
    assert info["ran"] is False and not (out / "build").exists()
