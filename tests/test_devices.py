"""Device profiles (devices/*.toml) and the C export's fit check against them."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from edgesnn._resources import devices_dir
from edgesnn.cli import main as cli_main
from edgesnn.devices import DeviceError, DeviceProfile, list_devices, load_device, parse_device
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
