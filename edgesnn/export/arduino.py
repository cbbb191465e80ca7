"""``--target arduino``: the model as an Arduino library (1.5 layout) that PlatformIO also takes.

The folder is a library any Arduino core can build: ``library.properties`` (Arduino library
specification 1.5), ``library.json`` (PlatformIO manifest), ``src/`` with the edgesnn C
runtime, the model (``model_data.c``: the ``.esg`` bytes, kept in flash on AVR), a C entry
point ``edgesnn_run()`` and the umbrella header ``edgesnn.h``, and
``examples/edgesnn_serial/edgesnn_serial.ino``, whose port functions use ``Serial`` and
``micros()``. Every runtime file reads the generated ``model_config.h`` (the library's copy of
``esnn.h`` names it as ``ESNN_CONFIG_HEADER``: an Arduino library cannot pass ``-D`` flags), so
the protocol buffers and result structs are sized for this model.

With ``--device`` (an MCU profile) the library is built for it as ``--target c`` builds its
project: the same ``model_config.h`` (the profile's ``memory.input_block`` walks the input in
blocks, so the arena is the block path's; the profile's ``-D`` flags such as
``ESNN_PROTO_CHUNK_MAX``), and the model is checked to fit with the Arduino core's own RAM and
code added (:data:`CORE_RAM`, :data:`CORE_CODE`). On a board whose RAM is too small for the
core's default 64-byte serial rings (:data:`SERIAL_BUFFER`), the example sketch refuses to
build unless the core was built with ``-DSERIAL_RX_BUFFER_SIZE=16
-DSERIAL_TX_BUFFER_SIZE=16``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import jinja2

from edgesnn import __version__
from edgesnn._resources import exporters_dir, firmware_dir
from edgesnn.atomic import atomic_dir
from edgesnn.devices import DeviceError, DeviceProfile, load_device
from edgesnn.export.base import ExportError, ExportTarget
from edgesnn.export.c import (
    CODE_ESTIMATE,
    RUNTIME_SRCS,
    STATIC_RAM_ESTIMATE,
    _esg_path,
    _hex_rows,
    check_fit,
    model_config,
)
from edgesnn.graph.esg import EsgError, decode, header_hash

log = logging.getLogger(__name__)

BAUDRATE = 115200
#: The Arduino AVR core's RAM besides edgesnn's and the serial rings (.data + .bss):
#: HardwareSerial's state, timer0's millis counters, vtables, the sketch's micros() origin.
#: Measured with Debian's core 1.8.7 and avr-gcc 5.4 on the Uno (tests/test_arduino.py builds
#: the sketch and checks the figure): .data + .bss - arena = 1,304 B = the profile's
#: static_bytes (1,216) + two 16-byte rings + 56 B; rounded up.
CORE_RAM = 64
#: Code the core adds to the runtime's (main, init, HardwareSerial, wiring), measured the same
#: way (the Uno build; tests/test_arduino.py checks it).
CORE_CODE = 2048
#: Serial ring sizes (RX and TX, bytes each) the library needs on a board with less than
#: :data:`SMALL_RAM` bytes of RAM, where the core's default 64 + 64 do not fit.
SERIAL_BUFFER = 16
SMALL_RAM = 4096
#: cflags of a profile that the core's own recipes already give (board's -mmcu, -Os, sections)
#: or that model_config.h carries (-D): the rest (the Uno's -mcall-prologues -mrelax) are
#: flags the sketch's build should add, named in edgesnn.h
_CORE_SETS = ("-mmcu=", "-O", "-D", "-ffunction-sections", "-fdata-sections")


def _templates(folder: str) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(exporters_dir() / folder)),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              autoescape=False)


def write_library(esg: bytes, out: Path, *, device: str | None = None,
                  source: str = "") -> dict[str, Any]:
    """Write the Arduino library for the ``.esg`` bytes ``esg`` to ``out`` (atomically)."""
    try:
        graph = decode(esg)
    except EsgError as exc:
        raise ExportError(f"model.esg is invalid: {exc}") from exc
    fit = None
    config: dict[str, Any] = {"arena_bytes": graph.arena_bytes(), "input_size": graph.input_size,
                              "steps": graph.steps, "n_classes": graph.n_classes,
                              "n_layers": len(graph.layers), "ann": graph.ann is not None}
    defines: list[tuple[str, str]] = []
    serial_buffer = 0
    extra_flags: list[str] = []
    if device is not None:
        try:
            profile = load_device(device)
        except DeviceError as exc:
            raise ExportError(str(exc)) from exc
        config = model_config(graph, profile)
        defines = profile_defines(profile)
        serial_buffer = SERIAL_BUFFER if profile.memory.ram_bytes < SMALL_RAM else 64
        extra_flags = [f for f in profile.build.cflags if not f.startswith(_CORE_SETS)]
        if serial_buffer < 64:
            extra_flags += [f"-DSERIAL_RX_BUFFER_SIZE={serial_buffer}",
                            f"-DSERIAL_TX_BUFFER_SIZE={serial_buffer}"]
        fit = check_fit(with_core(profile, serial_buffer), len(esg), config["arena_bytes"])
    model_hash = header_hash(esg).hex()
    banner = (f"Generated by edgesnn {__version__} for model {model_hash}. Do not edit; re-run "
              "`edgesnn export --target arduino`.")
    network = "-".join(str(n) for n in [graph.input_size] + [la.n_out for la in graph.layers])
    ctx = {
        "banner": banner, "model_hash": model_hash, "esg_bytes": len(esg), **config,
        "defines": defines, "serial_buffer": serial_buffer, "device": device or "",
        "extra_flags": " ".join(extra_flags),
        "hex_rows": _hex_rows(esg), "network": network, "baudrate": BAUDRATE,
        "name": f"edgesnn_model_{model_hash[:8]}", "version": re.sub(r"[^0-9.]", "",
                                                                       __version__) or "0.0.0",
        "edgesnn_version": __version__,
    }
    out = Path(out)
    if out.exists() and (not out.is_dir() or (
            not (out / "library.properties").is_file() and any(out.iterdir()))):
        raise ExportError(f"{out} exists and is not an edgesnn Arduino library; choose an "
                          "empty or new folder")
    arduino, c = _templates("arduino"), _templates("c")
    with atomic_dir(out, replace=True) as tmp:
        src = tmp / "src"
        example = tmp / "examples" / "edgesnn_serial"
        example.mkdir(parents=True)
        src.mkdir()
        rendered = {
            tmp / "library.properties": arduino.get_template("library.properties.j2"),
            tmp / "library.json": arduino.get_template("library.json.j2"),
            src / "edgesnn.h": arduino.get_template("edgesnn.h.j2"),
            src / "edgesnn_app.c": arduino.get_template("edgesnn_app.c.j2"),
            src / "model_config.h": c.get_template("model_config.h.j2"),
            src / "model_data.c": c.get_template("model_data.c.j2"),
            example / "edgesnn_serial.ino": arduino.get_template("edgesnn_serial.ino.j2"),
        }
        for path, template in rendered.items():
            path.write_text(template.render(**ctx), encoding="utf-8")
        runtime = firmware_dir() / "runtime"
        sources = RUNTIME_SRCS + (("esnn_ann.c",) if graph.ann is not None else ())
        for item in sorted(runtime.iterdir()):
            if item.suffix in (".h", ".def") or item.name in sources:
                shutil.copy2(item, src / item.name)
        # what `-DESNN_CONFIG_HEADER="model_config.h"` does in the C project's Makefile: every
        # runtime file includes esnn.h, which includes the named header first
        header = src / "esnn.h"
        header.write_text(CONFIG_LINE + header.read_text(encoding="utf-8"), encoding="utf-8")
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        summary = {"target": "arduino", "path": str(out), "name": ctx["name"],
                   "model_hash": model_hash, "esg_bytes": len(esg),
                   "arena_bytes": config["arena_bytes"], "device": device, "fit": fit,
                   "serial_buffer": serial_buffer or None, "extra_flags": extra_flags,
                   "edgesnn_version": __version__, "source": source, "files": files}
        json.loads((tmp / "library.json").read_text())  # the manifest is valid JSON
        summary["bytes"] = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
    log.info("wrote Arduino library %s (%s)", out, ctx["name"])
    return summary


CONFIG_LINE = ("/* edgesnn export --target arduino: an Arduino library cannot pass -D flags */\n"
               "#ifndef ESNN_CONFIG_HEADER\n#define ESNN_CONFIG_HEADER \"model_config.h\"\n"
               "#endif\n")


def profile_defines(profile: DeviceProfile) -> list[tuple[str, str]]:
    """The ``-DNAME[=VALUE]`` flags of the profile's cflags (the C project passes them to the
    compiler; the library writes them into model_config.h)."""
    out = []
    for flag in profile.build.cflags:
        if flag.startswith("-D"):
            name, _, value = flag[2:].partition("=")
            if not re.fullmatch(r"[A-Za-z_]\w*", name) or "\n" in value:
                raise ExportError(f"device {profile.name!r}: cflag {flag!r} is not -DNAME[=VALUE]")
            out.append((name, value or "1"))
    return out


def with_core(profile: DeviceProfile, serial_buffer: int) -> DeviceProfile:
    """``profile`` with the Arduino core's RAM (two serial rings of ``serial_buffer`` bytes +
    :data:`CORE_RAM`) and code (:data:`CORE_CODE`) added to the runtime's figures, so
    :func:`check_fit` counts them."""
    mem = profile.memory
    return dataclasses.replace(profile, memory=dataclasses.replace(
        mem, static_bytes=(mem.static_bytes or STATIC_RAM_ESTIMATE) + CORE_RAM
        + 2 * serial_buffer,
        code_bytes=(mem.code_bytes or CODE_ESTIMATE[profile.kind]) + CORE_CODE))


class ArduinoTarget(ExportTarget):
    name = "arduino"
    summary = ("Arduino library (library.properties, library.json, src/, example sketch "
               "on Serial); --device checks the fit")
    writes_folder = True

    def export(self, run_dir: Path, out: Path, *, device: str | None = None,
               **options: Any) -> dict[str, Any]:
        if options:
            raise ExportError(f"--target arduino takes no --option (got {', '.join(options)})")
        path = _esg_path(Path(run_dir))
        return write_library(path.read_bytes(), Path(out), device=device, source=str(path))


TARGET = ArduinoTarget()
