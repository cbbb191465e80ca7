"""``edgesnn devices [--json]``: the device profiles and how each one is reached.

One row per profile in ``devices/`` (MCU, board, host; crossbar technologies are listed by
``edgesnn crossbar-sim``): core, clock, flash, RAM, whether it is emulated, physical or the
host build, how firmware gets onto it and how its serial port is reached.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from edgesnn.cli import CliError
from edgesnn.devices import DeviceError, DeviceProfile, list_devices, load_device


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "devices",
        help="list the device profiles: core, clock, memory, how to flash and reach them",
        description="List devices/*.toml: core, clock, flash and RAM, emulated or physical, "
        "how the firmware is put on it (emulator or flasher) and how its serial link is "
        "reached.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON array")
    p.set_defaults(func=run)


def _where(profile: DeviceProfile) -> str:
    if profile.kind == "host":
        return "host"
    return "emulated" if profile.emulated else "physical"


def _flashed(profile: DeviceProfile) -> str:
    if profile.kind == "host":
        return "host process (nothing to program)"
    if profile.emulated:
        return f"runs in {profile.run.emulator} ({profile.run.machine})"
    return " ".join(profile.flash.command)


def _serial(profile: DeviceProfile) -> str:
    if profile.run.serial == "tcp":
        return "TCP socket to the emulated UART (socket://127.0.0.1:PORT)"
    if profile.run.serial == "pty":
        return "pseudo-terminal (/dev/pts/N)"
    return f"pyserial URL of the board's UART, {profile.serial.baudrate} baud"


def describe(profile: DeviceProfile) -> dict[str, Any]:
    """The listing's fields for one profile (what ``--json`` prints)."""
    return {
        "name": profile.name, "kind": profile.kind, "where": _where(profile),
        "core": profile.core.arch, "clock_hz": profile.core.clock_hz,
        "flash_bytes": profile.memory.flash_bytes, "ram_bytes": profile.memory.ram_bytes,
        "emulator": profile.run.emulator or None, "machine": profile.run.machine or None,
        "flasher": profile.flash.command[0] if profile.flash.command else None,
        "flash": _flashed(profile), "serial": _serial(profile),
        "cycle_unit": profile.run.cycle_unit, "description": profile.description,
        "path": str(profile.path),
    }


def _size(n: int) -> str:
    if n >= 1 << 30:
        return f"{n >> 30} GiB"
    return f"{n >> 20} MiB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n >> 10} KiB"


def run(args: argparse.Namespace) -> int:
    try:
        rows = [describe(load_device(name)) for name in list_devices()]
    except DeviceError as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    head = ("name", "where", "core", "clock", "flash", "RAM", "flashed by", "serial")
    table = [head] + [(r["name"], r["where"], r["core"],
                       f"{r['clock_hz'] / 1e6:g} MHz" if r["clock_hz"] else "-",
                       _size(r["flash_bytes"]), _size(r["ram_bytes"]), r["flash"],
                       r["serial"]) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head) - 1)]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0
