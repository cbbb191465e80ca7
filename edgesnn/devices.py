"""Device profiles: ``devices/<name>.toml`` describing an MCU, a board or the host build.

A profile gives the core, memories, toolchain and flags, the port folder, how to run or flash
the firmware, serial settings and energy constants with their sources. ``load_device``
validates every field and names the bad one; crossbar technology profiles (``kind =
"crossbar"``) live in the same folder but are loaded by :mod:`edgesnn.crossbar`.

Schema (every table required unless marked optional)::

    name, description, kind ("host" | "mcu" | "board")
    [core]   arch, clock_hz (>= 0; 0 = unknown, host), fpu (bool)
    [memory] flash_bytes, ram_bytes, stack_bytes (> 0), code_bytes (optional: runtime + port
             code besides the model, measured), model_max_bytes (optional: largest object the
             toolchain allows, 32,767 B with avr-gcc), static_bytes (optional: the runtime's
             static RAM besides arena and stack, measured), input_block (optional: a small-RAM
             build walks the input in blocks of this many pixels, esnn_infer.c, instead of
             SPEC 4's two input-sized lists; 0 = off)
    [build]  port (folder under firmware/ports), toolchain_prefix, cflags [..], ldflags [..]
    [run]    emulator ("" = none; QEMU, or a runner built with the firmware such as esnn_simavr),
             machine, args [.. "{elf}", "{machine}", "{clock_hz}" ..], serial ("pty"|"tcp"|"url"),
             icount_shift (optional int), cycle_unit ("cycles"|"instructions"|"ns")
    [flash]  command [.. "{elf}" / "{bin}" ..] (optional table; [] = nothing to program)
    [serial] baudrate, timeout_s
    [energy] voltage_v, current_ua_per_mhz, energy_per_cycle_nj (one of the last two may be
             omitted and is derived: nJ/cycle = uA/MHz * V / 1000), sources [..] (non-empty:
             the original paper or datasheet, so a user can open it)

A key or table that the schema does not know is an error naming it (a renamed key never
turns silently into a default). The board facts reach the firmware build only through
:func:`write_board_files`: ``esnn_board.h`` (board name, clock, baud rate, SysTick ticks per
counted unit) and ``device.mk`` (toolchain prefix, compile and link flags, stack size),
generated from the profile into every project, so no port file repeats them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from edgesnn import __version__
from edgesnn._resources import devices_dir, firmware_dir

KINDS = ("host", "mcu", "board")
SERIAL_KINDS = ("pty", "tcp", "url")
CYCLE_UNITS = ("cycles", "instructions", "ns")
#: cycle unit name -> the code the firmware announces in HELLO (PROTOCOL.md)
CYCLE_UNIT_CODES = {"cycles": 0, "instructions": 1, "ns": 2}


class DeviceError(ValueError):
    """A missing or malformed device profile; the message names the file and field."""


@dataclass(frozen=True)
class Core:
    arch: str
    clock_hz: int
    fpu: bool


@dataclass(frozen=True)
class Memory:
    flash_bytes: int
    ram_bytes: int
    stack_bytes: int
    code_bytes: int = 0  # runtime + port code besides the model (0: the exporter's default)
    model_max_bytes: int = 0  # largest .esg one object may hold (0: no limit but flash)
    static_bytes: int = 0  # runtime static RAM besides arena and stack (0: exporter's default)
    input_block: int = 0  # ESNN_INPUT_BLOCK: input walked in blocks of this many pixels (0: off)


@dataclass(frozen=True)
class Build:
    port: str
    toolchain_prefix: str
    cflags: tuple[str, ...]
    ldflags: tuple[str, ...]


@dataclass(frozen=True)
class Run:
    emulator: str
    machine: str
    args: tuple[str, ...]
    serial: str
    icount_shift: int | None
    cycle_unit: str


@dataclass(frozen=True)
class Flash:
    command: tuple[str, ...]


@dataclass(frozen=True)
class Serial:
    baudrate: int
    timeout_s: float


@dataclass(frozen=True)
class Energy:
    voltage_v: float
    current_ua_per_mhz: float
    energy_per_cycle_nj: float
    sources: tuple[str, ...]


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str
    kind: str
    core: Core
    memory: Memory
    build: Build
    run: Run
    flash: Flash
    serial: Serial
    energy: Energy
    path: Path
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def port_dir(self) -> Path:
        return firmware_dir() / "ports" / self.build.port

    @property
    def cycle_unit_code(self) -> int:
        return CYCLE_UNIT_CODES[self.run.cycle_unit]

    @property
    def emulated(self) -> bool:
        """Runs in an emulator (QEMU, simavr) rather than on a board or as a host process."""
        return self.kind != "host" and bool(self.run.emulator)

    @property
    def ticks_per_unit(self) -> Fraction:
        """SysTick ticks (on the core clock) per counted unit. Under ``-icount shift=N`` one
        instruction takes 2^N ns of virtual time, so SysTick at ``clock_hz`` advances
        2^N * clock_hz / 10^9 ticks per instruction (6.4 for shift 7 at 50 MHz); on silicon
        the unit is the core cycle and the ratio is 1."""
        if self.run.icount_shift is None:
            return Fraction(1)
        return Fraction(2 ** self.run.icount_shift * self.core.clock_hz, 10 ** 9)

    def to_json(self) -> dict[str, Any]:
        """The profile as parsed (plain TOML values) plus its path."""
        out = dict(self.raw)
        out["path"] = str(self.path)
        return out


class _Fields:
    """Typed access to one TOML table that names ``file: table.key`` in every error."""

    def __init__(self, path: Path, raw: dict[str, Any], table: str) -> None:
        self.path, self.table = path, table
        value = raw.get(table) if table else raw
        if not isinstance(value, dict):
            raise DeviceError(f"{path}: missing table [{table}]")
        self.data: dict[str, Any] = value
        self.seen: set[str] = set()

    def done(self, *, tables: tuple[str, ...] = ()) -> None:
        """Refuse keys nobody asked for (a typo or a renamed key), naming them."""
        unknown = sorted(set(self.data) - self.seen - set(tables))
        if unknown:
            accepted = sorted(self.seen | set(tables))
            raise DeviceError(f"{self.where(unknown[0])} is not a known key; accepted here: "
                              f"{', '.join(accepted)}")

    def where(self, key: str) -> str:
        return f"{self.path}: {self.table + '.' if self.table else ''}{key}"

    def get(self, key: str, kinds: type | tuple[type, ...], what: str, *,
            default: Any = ..., choices: tuple[Any, ...] | None = None) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if default is ...:
                raise DeviceError(f"{self.where(key)} is missing; expected {what}")
            return default
        value = self.data[key]
        allowed = kinds if isinstance(kinds, tuple) else (kinds,)
        ok = isinstance(value, allowed) and (bool in allowed or not isinstance(value, bool))
        if not ok or (choices is not None and value not in choices):
            raise DeviceError(f"{self.where(key)} = {value!r}; expected {what}")
        return value

    def integer(self, key: str, *, minimum: int = 0, default: Any = ...) -> Any:
        value = self.get(key, int, f"an integer >= {minimum}", default=default)
        if isinstance(value, int) and value < minimum:
            raise DeviceError(f"{self.where(key)} = {value}; expected an integer >= {minimum}")
        return value

    def number(self, key: str, *, default: Any = ...) -> Any:
        value = self.get(key, (int, float), "a number >= 0", default=default)
        if isinstance(value, (int, float)) and value < 0:
            raise DeviceError(f"{self.where(key)} = {value}; expected a number >= 0")
        return None if value is None else float(value)

    def strings(self, key: str, *, default: Any = ...) -> tuple[str, ...]:
        value = self.get(key, list, "a list of strings", default=default)
        if not all(isinstance(v, str) for v in value):
            raise DeviceError(f"{self.where(key)} = {value!r}; expected a list of strings")
        return tuple(value)


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text or isinstance(name_or_path, Path):
        path = Path(name_or_path)
        if not path.is_file():
            raise DeviceError(f"device profile {path} does not exist")
        return path
    path = devices_dir() / f"{text}.toml"
    if not path.is_file():
        raise DeviceError(f"unknown device {text!r}; accepted: {', '.join(list_devices())} "
                          "(or a path to a .toml profile)")
    return path


TABLES = ("core", "memory", "build", "run", "flash", "serial", "energy")


def parse_device(raw: dict[str, Any], path: Path) -> DeviceProfile:
    """Validate a parsed profile (``path`` is only used in messages and ``.path``)."""
    top = _Fields(path, raw, "")
    kind = top.get("kind", str, f"one of {', '.join(KINDS)}")
    if kind == "crossbar":
        raise DeviceError(f"{path}: kind = \"crossbar\" is a crossbar technology profile; "
                          "use it with `edgesnn export --target crossbar` / crossbar-sim, "
                          f"not as an MCU device (accepted kinds here: {', '.join(KINDS)})")
    if kind not in KINDS:
        raise DeviceError(f"{path}: kind = {kind!r}; expected one of {', '.join(KINDS)}")
    name = top.get("name", str, "a non-empty string")
    if not name:
        raise DeviceError(f"{path}: name is empty")
    description = top.get("description", str, "a string")
    top.done(tables=TABLES)

    c = _Fields(path, raw, "core")
    core = Core(arch=c.get("arch", str, "a string such as \"cortex-m3\""),
                clock_hz=c.integer("clock_hz"), fpu=c.get("fpu", bool, "true or false"))
    c.done()
    m = _Fields(path, raw, "memory")
    memory = Memory(flash_bytes=m.integer("flash_bytes", minimum=1),
                    ram_bytes=m.integer("ram_bytes", minimum=1),
                    stack_bytes=m.integer("stack_bytes", minimum=1),
                    code_bytes=m.integer("code_bytes", default=0),
                    model_max_bytes=m.integer("model_max_bytes", default=0),
                    static_bytes=m.integer("static_bytes", default=0),
                    input_block=m.integer("input_block", default=0))
    m.done()
    b = _Fields(path, raw, "build")
    build = Build(port=b.get("port", str, "a folder name under firmware/ports"),
                  toolchain_prefix=b.get("toolchain_prefix", str,
                                         "a string (\"\" for the host, \"arm-none-eabi-\")"),
                  cflags=b.strings("cflags"), ldflags=b.strings("ldflags"))
    b.done()
    if not build.port or "/" in build.port or build.port.startswith("."):
        raise DeviceError(f"{path}: build.port = {build.port!r}; expected a folder name "
                          "under firmware/ports")
    r = _Fields(path, raw, "run")
    shift = r.get("icount_shift", int, "an integer 0..10", default=None)
    if shift is not None and not 0 <= shift <= 10:
        raise DeviceError(f"{path}: run.icount_shift = {shift}; expected an integer 0..10")
    run = Run(emulator=r.get("emulator", str, "a program name or \"\""),
              machine=r.get("machine", str, "a QEMU machine name", default=""),
              args=r.strings("args", default=[]),
              serial=r.get("serial", str, f"one of {', '.join(SERIAL_KINDS)}",
                           choices=SERIAL_KINDS),
              icount_shift=shift,
              cycle_unit=r.get("cycle_unit", str, f"one of {', '.join(CYCLE_UNITS)}",
                               choices=CYCLE_UNITS))
    r.done()
    if run.emulator and not run.machine:
        raise DeviceError(f"{path}: run.machine is missing; an emulator needs a machine")
    if run.emulator and run.cycle_unit == "instructions" and shift is None:
        raise DeviceError(f"{path}: run.icount_shift is missing; counting instructions in "
                          "an emulator needs -icount shift=N")
    if run.emulator and shift is not None and core.clock_hz == 0:
        raise DeviceError(f"{path}: core.clock_hz = 0; the SysTick tick ratio under "
                          "run.icount_shift needs the core clock")
    if "flash" in raw:
        f = _Fields(path, raw, "flash")
        flash = Flash(command=f.strings("command"))
        f.done()
    else:
        flash = Flash(command=())
    if kind == "board" and not flash.command:
        raise DeviceError(f"{path}: flash.command is missing; a physical board must name "
                          "its flasher (pyocd, openocd, avrdude, picotool)")
    s = _Fields(path, raw, "serial")
    serial = Serial(baudrate=s.integer("baudrate", minimum=1),
                    timeout_s=float(s.number("timeout_s")))
    s.done()
    e = _Fields(path, raw, "energy")
    volts = e.number("voltage_v")
    ua = e.number("current_ua_per_mhz", default=None)
    nj = e.number("energy_per_cycle_nj", default=None)
    if ua is None and nj is None:
        raise DeviceError(f"{path}: energy needs current_ua_per_mhz or energy_per_cycle_nj")
    if nj is None:
        nj = ua * volts / 1000.0  # uA/MHz = pC per cycle; x V = pJ; / 1000 = nJ
    if ua is None:
        ua = nj * 1000.0 / volts if volts else 0.0
    sources = e.strings("sources")
    e.done()
    if not sources:
        raise DeviceError(f"{path}: energy.sources is empty; name the datasheet or paper")
    energy = Energy(voltage_v=volts, current_ua_per_mhz=ua, energy_per_cycle_nj=nj,
                    sources=sources)
    return DeviceProfile(name=name, description=description, kind=kind, core=core,
                         memory=memory, build=build, run=run, flash=flash, serial=serial,
                         energy=energy, path=path, raw=raw)


def load_device(name_or_path: str | Path) -> DeviceProfile:
    """Load ``devices/<name>.toml`` (or a path to a profile) and validate it."""
    path = _resolve(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise DeviceError(f"{path}: not valid TOML: {exc}") from exc
    return parse_device(raw, path)


def list_devices(*, include_crossbar: bool = False) -> list[str]:
    """Names of the profiles in ``devices/`` (MCU, board and host; crossbar ones on request)."""
    names = []
    for path in sorted(devices_dir().glob("*.toml")):
        try:
            kind = tomllib.loads(path.read_text(encoding="utf-8")).get("kind")
        except (tomllib.TOMLDecodeError, OSError):
            continue
        if kind in KINDS or (include_crossbar and kind == "crossbar"):
            names.append(path.stem)
    return names


#: files :func:`write_board_files` generates into a firmware project (or a port test build)
BOARD_HEADER = "esnn_board.h"
DEVICE_MAKEFILE = "device.mk"


def _c_string(text: str) -> str:
    if any(c in text for c in '"\\\n') or not text.isprintable():
        raise DeviceError(f"{text!r} cannot be written as a C string literal")
    return f'"{text}"'


def _make_words(items: tuple[str, ...]) -> str:
    for item in items:
        if any(c in item for c in "\n#$"):
            raise DeviceError(f"flag {item!r} contains a character make cannot take (\\n # $)")
    return " ".join(items)


def board_header(profile: DeviceProfile, banner: str = "") -> str:
    """``esnn_board.h``: the profile's board facts as C constants for the port files."""
    ratio = profile.ticks_per_unit
    head = banner or f"Generated by edgesnn {__version__} from {profile.path.name}."
    guard = "ESNN_BOARD_H"
    return "\n".join([
        f"/* {head} Do not edit: change devices/{profile.name}.toml. */",
        f"#ifndef {guard}", f"#define {guard}", "",
        f"#define ESNN_BOARD_NAME {_c_string(profile.name)}",
        f"#define ESNN_BOARD_CLOCK_HZ {profile.core.clock_hz}ul /* core.clock_hz */",
        f"#define ESNN_BOARD_BAUD {profile.serial.baudrate}ul /* serial.baudrate */",
        f"#define ESNN_BOARD_CYCLE_UNIT {profile.cycle_unit_code}u "
        f"/* run.cycle_unit = {profile.run.cycle_unit} */",
        "/* SysTick ticks per counted unit: 2^run.icount_shift ns x core.clock_hz under QEMU "
        "-icount, 1 on silicon */",
        f"#define ESNN_CM_TICKS_NUM {ratio.numerator}u",
        f"#define ESNN_CM_TICKS_DEN {ratio.denominator}u", "",
        f"#endif /* {guard} */", ""])


def device_makefile(profile: DeviceProfile, banner: str = "") -> str:
    """``device.mk``: toolchain prefix, the profile's compile and link flags and the stack
    size (``memory.stack_bytes``, reserved by the Cortex-M linker script) for make."""
    head = banner or f"Generated by edgesnn {__version__} from {profile.path.name}."
    return "\n".join([
        f"# {head} Do not edit: change devices/{profile.name}.toml.",
        f"DEVICE_NAME := {profile.name}",
        f"DEVICE_PORT := {profile.build.port}",
        f"CROSS ?= {profile.build.toolchain_prefix}",
        f"DEVICE_CFLAGS := {_make_words(profile.build.cflags)}",
        f"DEVICE_LDFLAGS := {_make_words(profile.build.ldflags)}",
        f"DEVICE_STACK_BYTES := {profile.memory.stack_bytes}",
        f"DEVICE_EMULATOR := {profile.run.emulator}", ""])


def write_board_files(profile: DeviceProfile, out_dir: Path, banner: str = "") -> list[Path]:
    """Write ``esnn_board.h`` and ``device.mk`` for ``profile`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / BOARD_HEADER, out_dir / DEVICE_MAKEFILE]
    paths[0].write_text(board_header(profile, banner), encoding="utf-8")
    paths[1].write_text(device_makefile(profile, banner), encoding="utf-8")
    return paths


def find_device(name: str | None) -> DeviceProfile | None:
    """The profile called ``name``, or None when there is no such profile (a URL, ``sim``);
    a profile that exists but is malformed still raises :class:`DeviceError`."""
    if not name or not (devices_dir() / f"{name}.toml").is_file():
        return None
    return load_device(name)
