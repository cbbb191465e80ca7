"""Device profiles: ``devices/<name>.toml`` describing an MCU, a board or the host build.

A profile gives the core, memories, toolchain and flags, the port folder, how to run or flash
the firmware, serial settings and energy constants with their sources. ``load_device``
validates every field and names the bad one; crossbar technology profiles (``kind =
"crossbar"``) live in the same folder but are loaded by :mod:`edgesnn.crossbar`.

Schema (every table required unless marked optional)::

    name, description, kind ("host" | "mcu" | "board")
    [core]   arch, clock_hz (>= 0; 0 = unknown, host), fpu (bool)
    [memory] flash_bytes, ram_bytes, stack_bytes (> 0)
    [build]  port (folder under firmware/ports), toolchain_prefix, cflags [..], ldflags [..]
    [run]    emulator ("" = none), machine, args [.. "{elf}" ..], serial ("pty"|"tcp"|"url"),
             icount_shift (optional int), cycle_unit ("cycles"|"instructions"|"ns")
    [flash]  command [.. "{elf}" / "{bin}" ..] (optional table; [] = nothing to program)
    [serial] baudrate, timeout_s
    [energy] voltage_v, current_ua_per_mhz, energy_per_cycle_nj (one of the last two may be
             omitted and is derived: nJ/cycle = uA/MHz * V / 1000), sources [..] (non-empty)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

    def where(self, key: str) -> str:
        return f"{self.path}: {self.table + '.' if self.table else ''}{key}"

    def get(self, key: str, kinds: type | tuple[type, ...], what: str, *,
            default: Any = ..., choices: tuple[Any, ...] | None = None) -> Any:
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

    c = _Fields(path, raw, "core")
    core = Core(arch=c.get("arch", str, "a string such as \"cortex-m3\""),
                clock_hz=c.integer("clock_hz"), fpu=c.get("fpu", bool, "true or false"))
    m = _Fields(path, raw, "memory")
    memory = Memory(flash_bytes=m.integer("flash_bytes", minimum=1),
                    ram_bytes=m.integer("ram_bytes", minimum=1),
                    stack_bytes=m.integer("stack_bytes", minimum=1))
    b = _Fields(path, raw, "build")
    build = Build(port=b.get("port", str, "a folder name under firmware/ports"),
                  toolchain_prefix=b.get("toolchain_prefix", str,
                                         "a string (\"\" for the host, \"arm-none-eabi-\")"),
                  cflags=b.strings("cflags"), ldflags=b.strings("ldflags"))
    if not build.port or "/" in build.port or build.port.startswith("."):
        raise DeviceError(f"{path}: build.port = {build.port!r}; expected a folder name "
                          "under firmware/ports")
    r = _Fields(path, raw, "run")
    shift = r.get("icount_shift", int, "an integer 0..10", default=None)
    if shift is not None and not 0 <= shift <= 10:
        raise DeviceError(f"{path}: run.icount_shift = {shift}; expected an integer 0..10")
    run = Run(emulator=r.get("emulator", str, "a program name or \"\"", default=""),
              machine=r.get("machine", str, "a QEMU machine name", default=""),
              args=r.strings("args", default=[]),
              serial=r.get("serial", str, f"one of {', '.join(SERIAL_KINDS)}",
                           choices=SERIAL_KINDS),
              icount_shift=shift,
              cycle_unit=r.get("cycle_unit", str, f"one of {', '.join(CYCLE_UNITS)}",
                               choices=CYCLE_UNITS))
    if run.emulator and not run.machine:
        raise DeviceError(f"{path}: run.machine is missing; an emulator needs a machine")
    flash = Flash(command=_Fields(path, raw, "flash").strings("command", default=[])
                  if "flash" in raw else ())
    s = _Fields(path, raw, "serial")
    serial = Serial(baudrate=s.integer("baudrate", minimum=1),
                    timeout_s=float(s.number("timeout_s")))
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
