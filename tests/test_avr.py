"""8-bit AVR: the runtime with 16-bit int and the model in flash, run in simavr.

The Arduino Mega 2560 profile (ATmega2560, 16 MHz, 256 KB flash, 8 KB SRAM): the generated
firmware keeps the .esg blob in program memory (read through __memx pointers, esnn_rom.h),
runs in simavr behind firmware/ports/avr/sim/esnn_simavr.c (built next to the firmware) and
answers every INFER bit-exactly with golden; Timer1 gives exact, repeatable CPU cycles.
Skipped (with the reason) when avr-gcc or libsimavr is missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from edgesnn.build import build_project
from edgesnn.devices import load_device
from edgesnn.export.c import TARGET as C_TARGET
from edgesnn.graph import esg
from edgesnn.graph.esg import header_hash
from edgesnn.graph.synth import random_graph, random_pixels
from edgesnn.host import protocol as proto
from edgesnn.host.launch import launch
from tests.test_qemu import Link, check_bit_exact, check_hello

DEVICE = "arduino-mega2560"


def _need_avr() -> None:
    missing = [t for t in ("avr-gcc", "make", "pkg-config") if shutil.which(t) is None]
    if not missing and subprocess.run(["pkg-config", "--exists", "simavr"],
                                      check=False).returncode != 0:
        missing.append("libsimavr")
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian: gcc-avr avr-libc "
                    "libsimavr-dev libelf-dev pkg-config)")


def _firmware(graph: object, tmp_path: Path) -> tuple[Path, bytes]:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    blob = esg.encode(graph)  # type: ignore[arg-type]
    (run_dir / "model.esg").write_bytes(blob)
    C_TARGET.export(run_dir, tmp_path / "fw", device=DEVICE)
    res = build_project(tmp_path / "fw")
    assert (tmp_path / "fw" / "esnn_simavr").is_file(), "the simulator bridge is built too"
    return res.elf, blob


def _sections(elf: Path) -> dict[str, int]:
    out = subprocess.run(["avr-size", "-A", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    rows = [line.split() for line in out.splitlines()[2:] if line.strip()]
    return {r[0]: int(r[1]) for r in rows if len(r) >= 2 and r[1].isdigit()}


def test_model_stays_in_flash(tmp_path: Path) -> None:
    """The blob is in .text (program memory): .data holds no copy of it."""
    _need_avr()
    graph = random_graph(3, input_size=784, hidden=(64,), n_classes=10, steps=8,
                         storage="sparse", density=0.05, weight_bits=4)
    elf, blob = _firmware(graph, tmp_path)
    sec = _sections(elf)
    assert len(blob) > 4000
    assert sec[".data"] < 256, sec  # protocol/board constants only; the model would be KBs
    assert sec[".text"] > len(blob), sec
    profile = load_device(DEVICE)
    ram = sec[".data"] + sec[".bss"]
    assert ram + profile.memory.stack_bytes <= profile.memory.ram_bytes, (ram, sec)
    assert sec[".text"] + sec[".data"] <= profile.memory.flash_bytes
    code = sec[".text"] + sec[".data"] - len(blob)
    assert 0 < code <= profile.memory.code_bytes, code  # the fit check's estimate holds


def test_model_over_32k_is_refused_at_export(tmp_path: Path) -> None:
    """avr-gcc cannot hold a .esg above 32,767 B in one object: export says so, with numbers."""
    from edgesnn.export.base import ExportError

    graph = random_graph(3, input_size=784, hidden=(64,), n_classes=10, steps=4)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    blob = esg.encode(graph)
    (run_dir / "model.esg").write_bytes(blob)
    with pytest.raises(ExportError, match=rf"one object may hold 32,767 B on this toolchain: "
                                          rf"over by {len(blob) - 32767:,} B"):
        C_TARGET.export(run_dir, tmp_path / "fw", device=DEVICE)
    assert not (tmp_path / "fw").exists()


@pytest.mark.qemu
def test_mega2560_bit_exact_on_200_digits(tmp_path: Path, mnist_data_dir: Path) -> None:
    _need_avr()
    from edgesnn.data import load_dataset

    data = load_dataset("mnist", "test", data_dir=mnist_data_dir, limit=200)
    graph = random_graph(5, input_size=784, hidden=(64,), n_classes=10, steps=8,
                         storage="sparse", density=0.05, weight_bits=4, per_neuron=True)
    elf, blob = _firmware(graph, tmp_path)
    with launch(load_device(DEVICE), elf) as session:
        link = Link(session.url)
        try:
            hello = link.hello()
            assert hello.cycle_unit == proto.CycleUnit.CYCLES and hello.clock_hz == 16_000_000
            with pytest.raises(AssertionError):  # it counts cycles, not instructions
                check_hello(hello, graph, blob, DEVICE)
            assert (hello.board, hello.model_hash) == (DEVICE, header_hash(blob))
            cycles = check_bit_exact(link, graph, data.images)
            assert link.infer(data.images[9]).cycles == cycles[9]  # exact, repeatable
        finally:
            link.close()
    assert len(set(cycles)) > 1 and min(cycles) > 10_000


@pytest.mark.qemu
@pytest.mark.parametrize("kind", [
    dict(neuron="if", reset="zero", bias=True, hidden=(16, 12)),
    dict(encoder="latency", storage="sparse", density=0.3, weight_bits=4),
    dict(encoder="direct", per_neuron=True, bias=True),
    dict(weight_bits=4, per_neuron=True),
    dict(neuron="cuba_lif", reset="subtract_delayed", per_neuron=True, bias=True),
], ids=["if-zero-bias-2hidden", "latency-sparse-int4", "direct-bias", "dense-int4",
        "cuba-lif"])
def test_mega2560_every_kernel_bit_exact(kind: dict, tmp_path: Path) -> None:
    """Dense/sparse, int8/int4, rate/latency/direct, LIF/IF, bias: 16-bit int changes nothing."""
    _need_avr()
    params = dict(input_size=64, hidden=(16,), n_classes=4, steps=6) | kind
    graph = random_graph(7, **params)  # type: ignore[arg-type]
    elf, _blob = _firmware(graph, tmp_path)
    with launch(load_device(DEVICE), elf) as session:
        link = Link(session.url)
        try:
            check_bit_exact(link, graph, random_pixels(3, 8, graph.input_size))
        finally:
            link.close()


def test_physical_board_builds_without_the_simulator(tmp_path: Path) -> None:
    """arduino-mega2560-board: the same port, no simavr runner built, avrdude to program it."""
    if shutil.which("avr-gcc") is None:
        pytest.skip("avr-gcc not installed (Debian: gcc-avr avr-libc)")
    graph = random_graph(3, input_size=64, hidden=(16,), n_classes=4, steps=4)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.esg").write_bytes(esg.encode(graph))
    C_TARGET.export(run_dir, tmp_path / "fw", device="arduino-mega2560-board")
    res = build_project(tmp_path / "fw")
    assert res.elf.is_file() and not (tmp_path / "fw" / "esnn_simavr").exists()
    profile = load_device("arduino-mega2560-board")
    assert profile.kind == "board" and profile.flash.command[0] == "avrdude"
    assert res.flash_bytes <= profile.memory.flash_bytes
