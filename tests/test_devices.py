"""Device profiles (devices/*.toml) and the C export's fit check against them."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from fractions import Fraction
from pathlib import Path

import pytest

from edgesnn._resources import devices_dir, firmware_dir
from edgesnn.cli import main as cli_main
from edgesnn.devices import (
    DeviceError,
    DeviceProfile,
    list_devices,
    load_device,
    parse_device,
    write_board_files,
)
from edgesnn.export.base import ExportError
from edgesnn.export.c import CODE_ESTIMATE, STATIC_RAM_ESTIMATE, check_fit, generate_project
from edgesnn.graph import esg
from edgesnn.graph.synth import random_graph


def test_every_profile_loads() -> None:
    names = list_devices()
    assert "host" in names
    for name in names:
        p = load_device(name)
        assert isinstance(p, DeviceProfile) and p.name == name
        assert p.memory.flash_bytes > 0 and p.memory.ram_bytes > p.memory.stack_bytes
        assert p.energy.sources and p.energy.energy_per_cycle_nj > 0
        assert (p.port_dir / "port.mk").is_file() or p.kind == "board", name


def test_host_profile() -> None:
    host = load_device("host")
    assert (host.kind, host.build.port, host.run.serial, host.run.cycle_unit) == (
        "host", "host", "pty", "ns")
    assert host.cycle_unit_code == 2 and host.build.toolchain_prefix == ""
    assert load_device(devices_dir() / "host.toml") == host


def test_crossbar_profiles_are_refused() -> None:
    crossbar = [n for n in list_devices(include_crossbar=True) if n not in list_devices()]
    assert crossbar, "expected crossbar technology profiles in devices/"
    with pytest.raises(DeviceError, match="crossbar"):
        load_device(crossbar[0])


def test_unknown_device_lists_accepted() -> None:
    with pytest.raises(DeviceError, match="accepted: .*host"):
        load_device("no-such-board")


def _host_raw() -> dict:
    return tomllib.loads((devices_dir() / "host.toml").read_text())


@pytest.mark.parametrize(("table", "key", "value", "message"), [
    ("memory", "flash_bytes", -1, "memory.flash_bytes"),
    ("memory", "ram_bytes", "lots", "memory.ram_bytes"),
    ("core", "fpu", 1, "core.fpu"),
    ("run", "serial", "usb", "run.serial"),
    ("run", "cycle_unit", "ticks", "run.cycle_unit"),
    ("build", "cflags", "-O2", "build.cflags"),
    ("build", "port", "../etc", "build.port"),
    ("", "kind", "fpga", "kind"),
])
def test_bad_field_is_named(table: str, key: str, value: object, message: str) -> None:
    raw = _host_raw()
    (raw[table] if table else raw)[key] = value
    with pytest.raises(DeviceError, match=message.replace(".", r"\.")):
        parse_device(raw, Path("bad.toml"))


def test_missing_table_and_energy_derivation() -> None:
    raw = _host_raw()
    del raw["serial"]
    with pytest.raises(DeviceError, match=r"\[serial\]"):
        parse_device(raw, Path("bad.toml"))
    raw = _host_raw()
    del raw["energy"]["energy_per_cycle_nj"]
    raw["energy"]["current_ua_per_mhz"] = 100.0
    raw["energy"]["voltage_v"] = 3.0
    assert parse_device(raw, Path("x.toml")).energy.energy_per_cycle_nj == pytest.approx(0.3)


def _tiny_profile(tmp_path: Path, flash: int, ram: int) -> Path:
    text = (devices_dir() / "host.toml").read_text()
    text = text.replace('name = "host"', 'name = "tiny"').replace('kind = "host"', 'kind = "mcu"')
    text = text.replace("flash_bytes = 1_073_741_824", f"flash_bytes = {flash}")
    text = text.replace("ram_bytes = 1_073_741_824", f"ram_bytes = {ram}")
    text = text.replace("stack_bytes = 8_388_608", "stack_bytes = 1024")
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    return path


def test_model_too_big_is_refused_with_numbers(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    graph = random_graph(5, input_size=784, hidden=(64,), n_classes=10, steps=4)
    data = esg.encode(graph)
    flash = len(data) + CODE_ESTIMATE["mcu"] - 1000
    ram = graph.arena_bytes() + 1024 + STATIC_RAM_ESTIMATE - 8
    profile = load_device(_tiny_profile(tmp_path, flash, ram))
    with pytest.raises(ExportError) as exc:
        check_fit(profile, len(data), graph.arena_bytes())
    msg = str(exc.value)
    assert "over by 1,000 B" in msg and "over by 8 B" in msg and "tiny" in msg
    assert f"model {len(data):,} B" in msg
    out = tmp_path / "proj"
    with pytest.raises(ExportError):
        generate_project(data, profile, out)
    assert not out.exists(), "nothing may be left half-written"
    # and through the CLI: exit 2 with the numbers on one line
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.esg").write_bytes(data)
    assert cli_main(["export", str(run_dir), "--target", "c", "--device",
                     str(tmp_path / "tiny.toml"), "--out", str(out)]) == 2
    assert "over by 1,000 B" in capsys.readouterr().err
    # one byte more of each and it fits
    fits = load_device(_tiny_profile(tmp_path, flash + 1000, ram + 8))
    assert check_fit(fits, len(data), graph.arena_bytes())["fits"]


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                    reason="arm-none-eabi-gcc not installed")
def test_cortex_m3_image_within_estimates(tmp_path: Path) -> None:
    """The real lm3s6965evb image: code and static RAM stay inside the fit estimates."""
    from edgesnn.build import build_project

    graph = random_graph(2, input_size=784, hidden=(32,), n_classes=10, steps=8)
    data = esg.encode(graph)
    profile = load_device("lm3s6965evb")
    generate_project(data, profile, tmp_path / "m3")
    res = build_project(tmp_path / "m3")
    code = res.text + res.data - len(data)
    static = res.bss - graph.arena_bytes() - profile.memory.stack_bytes
    assert 0 < code <= CODE_ESTIMATE["mcu"], code
    assert 0 < static <= STATIC_RAM_ESTIMATE, static


@pytest.mark.parametrize(("table", "old", "new"), [
    ("run", "icount_shift", "icount"),
    ("core", "clock_hz", "clock"),
    ("energy", "sources", "source"),
    ("", "description", "descr"),
])
def test_renamed_key_fails_naming_it(table: str, old: str, new: str) -> None:
    """A renamed key is refused naming the unknown key, never read as a default."""
    raw = tomllib.loads((devices_dir() / "lm3s6965evb.toml").read_text())
    section = raw[table] if table else raw
    section[new] = section.pop(old)
    prefix = f"{table}[.]" if table else ""
    with pytest.raises(DeviceError, match=rf"renamed\.toml: ({prefix}{new} is not a known key"
                       rf"|{prefix}{old} is missing)"):
        parse_device(raw, Path("renamed.toml"))


def test_missing_keys_fail_loudly() -> None:
    raw = tomllib.loads((devices_dir() / "lm3s6965evb.toml").read_text())
    del raw["run"]["icount_shift"]
    with pytest.raises(DeviceError, match=r"run\.icount_shift is missing"):
        parse_device(raw, Path("x.toml"))
    raw = tomllib.loads((devices_dir() / "nucleo-l4r5zi.toml").read_text())
    del raw["flash"]
    with pytest.raises(DeviceError, match=r"flash\.command is missing.*flasher"):
        parse_device(raw, Path("x.toml"))
    raw = _host_raw()
    raw["extra"] = {"a": 1}
    with pytest.raises(DeviceError, match="extra is not a known key"):
        parse_device(raw, Path("x.toml"))


def test_board_files_come_from_the_profile(tmp_path: Path) -> None:
    """esnn_board.h and device.mk carry the profile's name, clock, baud rate, SysTick ratio
    and flags; nothing in the port folders repeats them."""
    for name in list_devices():
        p = load_device(name)
        header, mk = (x.read_text() for x in write_board_files(p, tmp_path / name))
        ratio = p.ticks_per_unit
        assert f'#define ESNN_BOARD_NAME "{p.name}"' in header
        assert f"#define ESNN_BOARD_CLOCK_HZ {p.core.clock_hz}ul" in header
        assert f"#define ESNN_BOARD_BAUD {p.serial.baudrate}ul" in header
        assert f"#define ESNN_CM_TICKS_NUM {ratio.numerator}u" in header
        assert f"#define ESNN_CM_TICKS_DEN {ratio.denominator}u" in header
        assert f"DEVICE_CFLAGS := {' '.join(p.build.cflags)}\n" in mk
        assert f"CROSS ?= {p.build.toolchain_prefix}\n" in mk
        port_text = "".join(f.read_text() for f in p.port_dir.rglob("*")
                            if f.is_file() and f.suffix in (".c", ".h", ".mk"))
        assert f'"{p.name}"' not in port_text, f"{p.port_dir} repeats the board name"
        assert "-mcpu=" not in port_text, f"{p.port_dir} repeats -mcpu"
        assert "ESNN_CM_TICKS_NUM=" not in port_text
    assert load_device("lm3s6965evb").ticks_per_unit == Fraction(32, 5)
    assert load_device("mps2-an386").ticks_per_unit == Fraction(8, 5)
    assert load_device("nucleo-l4r5zi").ticks_per_unit == 1


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                    reason="arm-none-eabi-gcc not installed")
def test_port_refuses_a_clock_its_pll_does_not_make(tmp_path: Path) -> None:
    """A profile clock that the port's clock setup does not produce stops the build."""
    text = (devices_dir() / "lm3s6965evb.toml").read_text()
    bad = tmp_path / "lm3s-fast.toml"
    bad.write_text(text.replace("clock_hz = 50_000_000", "clock_hz = 80_000_000"))
    profile = load_device(bad)
    write_board_files(profile, tmp_path)
    src = profile.port_dir / "port_lm3s6965evb.c"
    proc = subprocess.run(["arm-none-eabi-gcc", *profile.build.cflags, "-std=c99", "-c",
                           f"-I{tmp_path}", f"-I{profile.port_dir / 'common'}",
                           f"-I{firmware_dir() / 'runtime'}", str(src), "-o",
                           str(tmp_path / "p.o")], capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "core.clock_hz must be 50000000" in proc.stderr
