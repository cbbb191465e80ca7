"""``--target arduino``: an Arduino library that Debian's Arduino AVR core builds and that runs.

The exported folder follows the Arduino library specification 1.5 (library.properties, src/,
examples/) and PlatformIO's manifest (library.json). Built here with avr-gcc against
arduino-core-avr for the Arduino Mega 2560 the way the Arduino IDE's recipes do (platform.txt:
core, library and sketch compiled with -mmcu=atmega2560 -DF_CPU=16000000L -DARDUINO=... and
linked with --gc-sections), the example sketch runs in simavr and answers every INFER
bit-exactly with golden, with the model kept in flash.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from edgesnn._resources import firmware_dir
from edgesnn.devices import load_device
from edgesnn.export.base import ExportError, get_target
from edgesnn.graph import esg
from edgesnn.graph.esg import header_hash
from edgesnn.graph.ir import EncoderKind
from edgesnn.graph.synth import random_graph
from edgesnn.host import protocol as proto
from edgesnn.host.launch import launch
from tests.test_avr import _sections
from tests.test_qemu import Link, check_bit_exact

CORE = Path("/usr/share/arduino/hardware/arduino/avr")
#: boards.txt of the core: build.mcu, build.board, build.variant
BOARDS = {"arduino-mega2560": ("atmega2560", "AVR_MEGA2560", "mega"),
          "arduino-uno": ("atmega328p", "AVR_UNO", "standard")}
FLAGS = ["-DF_CPU=16000000L", "-DARDUINO=10807", "-DARDUINO_ARCH_AVR", "-Os",
         "-ffunction-sections", "-fdata-sections", "-Wall"]
C_FLAGS = ["-std=gnu11"]
# Debian's core 1.8.7 with Debian's avr-gcc 5.4: WString.cpp needs <float.h>'s DECIMAL_DIG,
# which gcc 5's C++11 mode does not define; the compiler's own __DECIMAL_DIG__ stands in
CPP_FLAGS = ["-std=gnu++11", "-fpermissive", "-fno-exceptions", "-fno-threadsafe-statics",
             "-DDECIMAL_DIG=__DECIMAL_DIG__"]


def _library(tmp_path: Path, graph: object, device: str | None = "arduino-mega2560") -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "model.esg").write_bytes(esg.encode(graph))  # type: ignore[arg-type]
    get_target("arduino").export(run_dir, tmp_path / "lib", device=device)
    return tmp_path / "lib"


def test_library_layout(tmp_path: Path) -> None:
    graph = random_graph(2, input_size=64, hidden=(16,), n_classes=4, steps=4)
    lib = _library(tmp_path, graph, device=None)
    props = dict(line.split("=", 1) for line in
                 (lib / "library.properties").read_text().splitlines() if "=" in line)
    # Arduino library specification 1.5: the required fields, and the header sketches include
    assert {"name", "version", "author", "maintainer", "sentence", "paragraph", "category",
            "url", "architectures"} <= props.keys()
    assert props["architectures"] == "*" and props["includes"] == "edgesnn.h"
    assert props["category"] in ("Data Processing", "Other")
    manifest = json.loads((lib / "library.json").read_text())
    assert manifest["name"] == props["name"] and manifest["frameworks"] == "arduino"
    assert (lib / "examples" / "edgesnn_serial" / "edgesnn_serial.ino").is_file()
    src = {p.name for p in (lib / "src").iterdir()}
    assert {"edgesnn.h", "edgesnn_app.c", "model_data.c", "model_config.h", "esnn.h",
            "esnn_infer.c", "esnn_model.c", "esnn_proto.c", "esnn_port.h",
            "esnn_rom.h"} <= src
    assert not any(p.is_dir() for p in (lib / "src").iterdir())


def test_model_too_big_for_the_board_is_refused(tmp_path: Path) -> None:
    graph = random_graph(2, input_size=784, hidden=(128,), n_classes=10, steps=4)
    with pytest.raises(ExportError, match="arduino-mega2560.*over by"):
        _library(tmp_path, graph)
    assert not (tmp_path / "lib").exists()


def _need_arduino() -> None:
    missing = [t for t in ("avr-gcc", "avr-g++", "pkg-config") if shutil.which(t) is None]
    if not (CORE / "cores" / "arduino" / "Arduino.h").is_file():
        missing.append("arduino-core-avr")
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian: gcc-avr avr-libc "
                    "arduino-core-avr libsimavr-dev libelf-dev pkg-config)")


def _compile(src: Path, obj: Path, flags: list[str], includes: list[Path]) -> None:
    cc = "avr-g++" if src.suffix in (".cpp", ".ino") else "avr-gcc"
    lang = ["-x", "c++"] if src.suffix == ".ino" else []
    cmd = [cc, *flags, *(CPP_FLAGS if cc == "avr-g++" else C_FLAGS), *lang,
           *(f"-I{i}" for i in includes), "-c", str(src), "-o", str(obj)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"


def build_sketch(lib: Path, out: Path, board: str = "arduino-mega2560",
                 extra_flags: tuple[str, ...] = ()) -> Path:
    """The example sketch + library + core -> out/edgesnn_serial.elf, as the IDE builds it
    for ``board`` (``extra_flags``: what arduino-cli's build.extra_flags adds to every file)."""
    out.mkdir()
    mcu, define, variant_name = BOARDS[board]
    flags = [f"-mmcu={mcu}", f"-DARDUINO_{define}", *FLAGS, *extra_flags]
    core, variant = CORE / "cores" / "arduino", CORE / "variants" / variant_name
    includes = [core, variant, lib / "src"]
    sketch = out / "edgesnn_serial.ino"  # the IDE prepends Arduino.h to a sketch
    sketch.write_text("#include <Arduino.h>\n" + (lib / "examples" / "edgesnn_serial" /
                                                   "edgesnn_serial.ino").read_text())
    sources = [sketch, *sorted((lib / "src").glob("*.c")),
               *sorted(core.glob("*.c")), *sorted(core.glob("*.cpp"))]
    objs = []
    for i, src in enumerate(sources):
        obj = out / f"{i:03d}_{src.stem}.o"
        _compile(src, obj, flags, includes)
        objs.append(str(obj))
    elf = out / "edgesnn_serial.elf"
    subprocess.run(["avr-gcc", f"-mmcu={mcu}", "-Os", "-Wl,--gc-sections", *objs, "-lm",
                    "-o", str(elf)], check=True, capture_output=True, timeout=120)
    bridge = out / "esnn_simavr"  # the simulator runner the AVR port builds, next to the ELF
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "simavr"], capture_output=True,
                           text=True, check=True).stdout.split()
    subprocess.run(["gcc", "-std=gnu99", "-O2", str(firmware_dir() / "ports" / "avr" / "sim" /
                                                    "esnn_simavr.c"), "-o", str(bridge),
                    *flags, "-lelf"], check=True, capture_output=True, timeout=120)
    return elf


def _hello(link: Link, tries: int = 5) -> proto.Hello:
    """HELLO, sent again if unanswered: simavr drops bytes that reach USART0 before the sketch's
    Serial.begin() enables the receiver (the C runtime clears 1.7 KB of .bss first), which a
    host that writes as soon as the pty opens can hit on a loaded machine."""
    timeout, link.timeout = link.timeout, 3.0
    try:
        for attempt in range(tries):
            try:
                return link.hello()
            except TimeoutError:
                if attempt == tries - 1:
                    raise
        raise AssertionError("unreachable")
    finally:
        link.timeout = timeout


@pytest.mark.qemu
def test_sketch_builds_with_the_arduino_core_and_runs_bit_exact(tmp_path: Path,
                                                                mnist_data_dir: Path) -> None:
    _need_arduino()
    from edgesnn.data import load_dataset

    graph = random_graph(9, input_size=784, hidden=(48,), n_classes=10, steps=8,
                         storage="sparse", density=0.05, weight_bits=4)
    lib = _library(tmp_path, graph)
    elf = build_sketch(lib, tmp_path / "build")
    sections = subprocess.run(["avr-size", "-A", str(elf)], capture_output=True, text=True,
                              check=True).stdout
    data = int(next(ln.split()[1] for ln in sections.splitlines() if ln.startswith(".data")))
    assert data < 512, sections  # the .esg stays in flash (Serial's buffers and tables only)
    images = load_dataset("mnist", "test", data_dir=mnist_data_dir, limit=50).images
    with launch(load_device("arduino-mega2560"), elf) as session:
        link = Link(session.url)
        try:
            hello = _hello(link)
            assert hello.board == "arduino" and hello.clock_hz == 16_000_000
            assert hello.cycle_unit == proto.CycleUnit.NANOSECONDS
            assert hello.model_hash == header_hash(esg.encode(graph))
            times = check_bit_exact(link, graph, images)
        finally:
            link.close()
    assert all(t % 4000 == 0 and t > 0 for t in times)  # micros() in steps of 4 us, as ns


# ------------------------------------------------------------------------------------------
# Arduino Uno (ATmega328P, 2 KB RAM): the library built for the profile's small-RAM settings

UNO = "arduino-uno"
#: what the library's edgesnn.h asks the Uno build to add (arduino-cli build.extra_flags): the
#: core's serial rings at 16 bytes and the profile's code-size flags
UNO_FLAGS = ("-DSERIAL_RX_BUFFER_SIZE=16", "-DSERIAL_TX_BUFFER_SIZE=16", "-mcall-prologues",
             "-mrelax")


def uno_library_graph() -> object:
    """784-48-10, 91 % pruned, int4: the Uno C project's 784-64-10 (tests/test_avr_uno.py)
    does not fit beside the Arduino core (Serial, timers: about 100 B of RAM and 2 KB of
    code more), so the library is checked with 48 hidden neurons."""
    return random_graph(5, input_size=784, hidden=(48,), n_classes=10, steps=8,
                        storage="sparse", density=0.09, weight_bits=4, per_neuron=True)


def test_uno_library_takes_the_profile_settings(tmp_path: Path) -> None:
    """model_config.h of the Uno library is the C project's: the block path's arena, the
    profile's ESNN_PROTO_CHUNK_MAX, no CubaLIF code; every runtime file reads it."""
    from edgesnn.export.c import device_arena_bytes

    graph = uno_library_graph()
    lib = _library(tmp_path, graph, device=UNO)
    profile = load_device(UNO)
    config = (lib / "src" / "model_config.h").read_text()
    arena = device_arena_bytes(graph, profile)  # type: ignore[arg-type]
    assert arena < graph.arena_bytes()  # type: ignore[attr-defined]
    assert f"#define ESNN_ARENA_BYTES {arena}u" in config
    assert "#define ESNN_INPUT_BLOCK 32u" in config
    assert "#define ESNN_PROTO_CHUNK_MAX 64" in config and "#define ESNN_NO_CUBALIF" in config
    assert ("#define ESNN_NO_DIRECT" in config) == (graph.encoder.kind != EncoderKind.DIRECT)
    assert (lib / "src" / "esnn.h").read_text().index('"model_config.h"') < \
        (lib / "src" / "esnn.h").read_text().index("#include ESNN_CONFIG_HEADER")
    assert "#define EDGESNN_SERIAL_BUFFER 16" in (lib / "src" / "edgesnn.h").read_text()
    # the Mega keeps SPEC 4's arena and the core's default rings
    mega = _library(tmp_path / "mega", graph)
    assert f"ESNN_ARENA_BYTES {graph.arena_bytes()}u" in (  # type: ignore[attr-defined]
        mega / "src" / "model_config.h").read_text()
    assert "EDGESNN_SERIAL_BUFFER" not in (mega / "src" / "edgesnn.h").read_text()


def test_uno_library_refuses_the_c_projects_model(tmp_path: Path) -> None:
    """784-64-10 fits the Uno as a C project but not beside the Arduino core: refused, naming
    RAM and flash and by how much."""
    from tests.test_avr_uno import uno_graph

    with pytest.raises(ExportError, match=r"device 'arduino-uno': flash needs [\d,]+ B .*over by "
                                          r"[\d,]+ B; RAM needs [\d,]+ B .*over by [\d,]+ B"):
        _library(tmp_path, uno_graph(), device=UNO)
    assert not (tmp_path / "lib").exists()


def test_uno_sketch_refuses_the_default_serial_rings(tmp_path: Path) -> None:
    _need_arduino()
    lib = _library(tmp_path, uno_library_graph(), device=UNO)
    with pytest.raises(AssertionError, match="SERIAL_RX_BUFFER_SIZE=16"):
        build_sketch(lib, tmp_path / "build", board=UNO)


@pytest.mark.qemu
def test_uno_sketch_runs_bit_exact_in_2k_of_ram(tmp_path: Path, mnist_data_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The Uno library built with the core and run in simavr: every answer equals golden,
    and .data + .bss + the deepest stack simavr saw (ISRs included) fit 2,048 B."""
    _need_arduino()
    from edgesnn.data import load_dataset
    from edgesnn.export.arduino import CORE_CODE, CORE_RAM, SERIAL_BUFFER

    graph = uno_library_graph()
    blob = esg.encode(graph)  # type: ignore[arg-type]
    lib = _library(tmp_path, graph, device=UNO)
    elf = build_sketch(lib, tmp_path / "build", board=UNO, extra_flags=UNO_FLAGS)
    sec = _sections(elf)
    profile = load_device(UNO)
    summary = json.loads((lib / "library.json").read_text())
    assert summary["name"].startswith("edgesnn_model_")
    arena = int(next(ln.split()[2].rstrip("u") for ln in
                     (lib / "src" / "model_config.h").read_text().splitlines()
                     if ln.startswith("#define ESNN_ARENA_BYTES")))
    static = sec[".data"] + sec[".bss"]
    # the fit check's figures hold: runtime static + the core's + two rings
    assert static - arena <= profile.memory.static_bytes + CORE_RAM + 2 * SERIAL_BUFFER, sec
    code = sec[".text"] + sec[".data"] - len(blob)
    assert 0 < code <= profile.memory.code_bytes + CORE_CODE, code
    assert sec[".text"] + sec[".data"] <= profile.memory.flash_bytes, sec
    images = load_dataset("mnist", "test", data_dir=mnist_data_dir, limit=50).images
    stack_file = tmp_path / "stack.txt"
    monkeypatch.setenv("ESNN_SIMAVR_STACK", str(stack_file))  # the runner's stack report
    with launch(profile, elf) as session:
        link = Link(session.url, timeout=60.0)
        try:
            hello = _hello(link)
            assert (hello.board, hello.clock_hz, hello.chunk_max) == ("arduino", 16_000_000, 64)
            assert hello.model_hash == header_hash(blob)
            times = check_bit_exact(link, graph, images)  # type: ignore[arg-type]
        finally:
            link.close()
    assert all(t % 4000 == 0 and t > 0 for t in times)
    ramend, sp_min, peak = (int(x) for x in stack_file.read_text().split()[:3])
    assert (ramend, ramend - sp_min) == (0x8FF, peak)
    assert 100 < peak <= profile.memory.stack_bytes, peak
    print(f"uno library: static {static} B + stack {peak} B = {static + peak} B of 2,048; "
          f"flash {sec['.text'] + sec['.data']} B")
    assert static + peak <= 2048, (static, peak)  # .data + .bss + the deepest stack
