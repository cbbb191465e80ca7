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
from edgesnn.graph.synth import random_graph
from edgesnn.host import protocol as proto
from edgesnn.host.launch import launch
from tests.test_qemu import Link, check_bit_exact

CORE = Path("/usr/share/arduino/hardware/arduino/avr")
FLAGS = ["-mmcu=atmega2560", "-DF_CPU=16000000L", "-DARDUINO=10807", "-DARDUINO_AVR_MEGA2560",
         "-DARDUINO_ARCH_AVR", "-Os", "-ffunction-sections", "-fdata-sections", "-Wall"]
C_FLAGS = ["-std=gnu11"]
# Debian's core 1.8.7 with Debian's avr-gcc 5.4: WString.cpp needs <float.h>'s DECIMAL_DIG,
# which gcc 5's C++11 mode does not define; the compiler's own __DECIMAL_DIG__ stands in
CPP_FLAGS = ["-std=gnu++11", "-fpermissive", "-fno-exceptions", "-fno-threadsafe-statics",
             "-DDECIMAL_DIG=__DECIMAL_DIG__"]


def _library(tmp_path: Path, graph: object, device: str | None = "arduino-mega2560") -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
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


def _compile(src: Path, obj: Path, includes: list[Path]) -> None:
    cc = "avr-g++" if src.suffix in (".cpp", ".ino") else "avr-gcc"
    lang = ["-x", "c++"] if src.suffix == ".ino" else []
    cmd = [cc, *FLAGS, *(CPP_FLAGS if cc == "avr-g++" else C_FLAGS), *lang,
           *(f"-I{i}" for i in includes), "-c", str(src), "-o", str(obj)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"


def build_sketch(lib: Path, out: Path) -> Path:
    """The example sketch + library + core -> out/edgesnn_serial.elf, as the IDE builds it."""
    out.mkdir()
    core, variant = CORE / "cores" / "arduino", CORE / "variants" / "mega"
    includes = [core, variant, lib / "src"]
    sketch = out / "edgesnn_serial.ino"  # the IDE prepends Arduino.h to a sketch
    sketch.write_text("#include <Arduino.h>\n" + (lib / "examples" / "edgesnn_serial" /
                                                   "edgesnn_serial.ino").read_text())
    sources = [sketch, *sorted((lib / "src").glob("*.c")),
               *sorted(core.glob("*.c")), *sorted(core.glob("*.cpp"))]
    objs = []
    for i, src in enumerate(sources):
        obj = out / f"{i:03d}_{src.stem}.o"
        _compile(src, obj, includes)
        objs.append(str(obj))
    elf = out / "edgesnn_serial.elf"
    subprocess.run(["avr-gcc", "-mmcu=atmega2560", "-Os", "-Wl,--gc-sections", *objs, "-lm",
                    "-o", str(elf)], check=True, capture_output=True, timeout=120)
    bridge = out / "esnn_simavr"  # the simulator runner the AVR port builds, next to the ELF
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "simavr"], capture_output=True,
                           text=True, check=True).stdout.split()
    subprocess.run(["gcc", "-std=gnu99", "-O2", str(firmware_dir() / "ports" / "avr" / "sim" /
                                                    "esnn_simavr.c"), "-o", str(bridge),
                    *flags, "-lelf"], check=True, capture_output=True, timeout=120)
    return elf


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
            hello = link.hello()
            assert hello.board == "arduino" and hello.clock_hz == 16_000_000
            assert hello.cycle_unit == proto.CycleUnit.NANOSECONDS
            assert hello.model_hash == esg.encode(graph)[32:48]
            times = check_bit_exact(link, graph, images)
        finally:
            link.close()
    assert all(t % 4000 == 0 and t > 0 for t in times)  # micros() in steps of 4 us, as ns
