"""``edgesnn flash DIR --device NAME [--json] [--detach] [--dry-run]``.

Puts a generated firmware project (``edgesnn export --target c``) on a device:

* emulated MCUs (QEMU profiles): builds if needed, runs the ELF in QEMU and prints the serial
  URL. In the foreground until Ctrl-C / SIGTERM, then stops QEMU; ``--detach`` leaves it
  running and prints its PID and how to stop it.
* ``host``: builds if needed and starts the host binary on a pseudo-terminal, same lifecycle.
* physical boards: builds if needed and runs the profile's ``[flash] command`` (its
  flasher: pyocd, openocd, avrdude, picotool); when the tool is not installed it prints the
  exact command and the package that provides it.

``--dry-run`` starts nothing and builds nothing, for every kind of device: it prints the exact
commands it would run (``make -C DIR``, then the emulator, host binary or flasher command).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from edgesnn.cli import CliError
from edgesnn.devices import DeviceError, DeviceProfile, load_device

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "flash",
        help="run a firmware project on a device (QEMU, host pty) or program a board",
        description="Build DIR (a project from `edgesnn export --target c`) if needed and run "
        "it: in QEMU for emulated profiles, on a pseudo-terminal for `host`, or with the "
        "profile's flash command for a physical board. Prints the serial URL to evaluate with.",
    )
    p.add_argument("project", type=Path, metavar="DIR", help="generated firmware project")
    p.add_argument("--device", required=True, help="device profile name (devices/NAME.toml)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--detach", action="store_true",
                   help="leave the emulator/host process running and return (prints its PID)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the exact build and run/flash commands; start nothing")
    p.add_argument("--timeout", type=float, default=15.0, metavar="S",
                   help="seconds to wait for the device's serial link (default 15)")
    p.set_defaults(func=run)


def _profile(name: str) -> DeviceProfile:
    try:
        return load_device(name)
    except DeviceError as exc:
        raise CliError(str(exc)) from exc


def _build(project: Path) -> Path:
    """Build ``project`` (``make``, incremental) and return its firmware file."""
    from edgesnn.build import BuildError, build_project

    try:
        return Path(build_project(project).elf)
    except BuildError as exc:
        raise CliError(f"building {project} failed: {str(exc).splitlines()[0]}") from exc


def flash_command(template: list[str], elf: Path) -> list[str]:
    """The profile's ``[flash] command`` with ``{elf}`` and ``{bin}`` filled in."""
    binfile = elf.with_suffix(".bin")
    return [a.replace("{elf}", str(elf)).replace("{bin}", str(binfile)) for a in template]


def _emit(args: argparse.Namespace, obj: dict[str, Any], text: str) -> None:
    if args.json:
        print(json.dumps(obj, sort_keys=True), flush=True)
    else:
        print(text, flush=True)


#: Debian packages (or pip packages) that provide the flashers a profile may name
FLASHER_PACKAGES = {"pyocd": "pip install pyocd", "openocd": "apt install openocd",
                    "avrdude": "apt install avrdude", "picotool": "apt install picotool"}
#: what stands for the TCP port QEMU's UART will listen on (chosen free at start)
PORT_PLACEHOLDER = "PORT"


def run_command(profile: DeviceProfile, firmware: Path) -> list[str]:
    """The command that runs ``firmware`` on an emulated or host ``profile``."""
    from edgesnn.host.launch import emulator_command

    if profile.kind == "host":
        return [str(firmware), "--pty"]
    serial = ("pty" if profile.run.serial == "pty" else
              f"tcp:127.0.0.1:{PORT_PLACEHOLDER},server=on,wait=on,nodelay=on")
    return emulator_command(profile, firmware, serial)


def run(args: argparse.Namespace) -> int:
    from edgesnn.host.launch import LaunchError, launch

    project: Path = args.project
    if not project.is_dir():
        raise CliError(f"project directory {project} does not exist "
                       "(make one with `edgesnn export RUN_DIR --target c --device NAME`)")
    profile = _profile(args.device)
    if args.dry_run:
        return _dry_run(args, profile)
    if profile.kind != "host" and not profile.emulated:
        return _flash_board(args, profile)

    firmware = _build(project)
    log_path = project / "build" / f"{profile.name}-run.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        session = launch(profile, firmware, detach=args.detach, timeout=args.timeout,
                         log_path=log_path)
    except LaunchError as exc:
        raise CliError(str(exc).splitlines()[0] + f" (log: {log_path})") from exc
    info = {"device": profile.name, "url": session.url, "pid": session.pid,
            "firmware": str(firmware), "log": str(log_path), "detached": bool(args.detach)}
    if args.detach:
        _emit(args, info, f"{profile.name}: {session.url}\npid {session.pid}; stop it with: "
              f"kill {session.pid}\nlog: {log_path}")
        return 0
    _emit(args, info, f"{profile.name}: {session.url} (pid {session.pid}); Ctrl-C to stop")
    return _foreground(session)


def _dry_run(args: argparse.Namespace, profile: DeviceProfile) -> int:
    """Print the build and run/flash commands; run nothing (not even make)."""
    elf = _expected_elf(args.project)
    build = ["make", "-C", str(args.project.resolve())]
    if profile.kind != "host" and not profile.emulated:
        if not profile.flash.command:
            raise CliError(f"device {profile.name!r} has no emulator and no [flash] command")
        step = flash_command(list(profile.flash.command), elf)
        what = f"program with {step[0]}"
    else:
        step = run_command(profile, elf)
        what = "run" + (f"; {PORT_PLACEHOLDER} is a free TCP port chosen at start"
                        if PORT_PLACEHOLDER in " ".join(step) else "")
    info: dict[str, Any] = {"device": profile.name, "ran": False, "reason": "dry run",
                            "commands": [build, step], "command": step,
                            "firmware": str(elf)}
    _emit(args, info, f"dry run for {profile.name}; would run:\n{shlex.join(build)}\n"
          f"{shlex.join(step)}\n({what})")
    return 0


def _foreground(session: Any) -> int:
    """Wait until Ctrl-C / SIGTERM (then stop the device) or until the device exits."""
    stop = {"sig": 0}

    def on_signal(signum: int, _frame: object) -> None:
        stop["sig"] = signum

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stop["sig"] and session.alive():
            time.sleep(0.1)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        died = not session.alive() and not stop["sig"]
        code = session.close()
    if died:
        tail = session.output(2000).strip()
        print(f"edgesnn flash: {session.device} exited by itself with code {code}"
              + (f":\n{tail}" if tail else ""), file=sys.stderr)
        return 1
    log.info("stopped %s (pid %d)", session.device, session.pid)
    return 0


def _flash_board(args: argparse.Namespace, profile: DeviceProfile) -> int:
    if not profile.flash.command:
        raise CliError(f"device {profile.name!r} has no emulator and no [flash] command in its "
                       "profile")
    elf = _build(args.project)
    cmd = flash_command(list(profile.flash.command), elf)
    info: dict[str, Any] = {"device": profile.name, "command": cmd, "firmware": str(elf)}
    if shutil.which(cmd[0]) is None:
        how = FLASHER_PACKAGES.get(cmd[0], f"install {cmd[0]}")
        info.update(ran=False, reason=f"{cmd[0]} is not installed ({how})")
        _emit(args, info, f"{info['reason']}; would run:\n{shlex.join(cmd)}")
        return 1
    proc = subprocess.run(cmd, check=False)
    info.update(ran=True, returncode=proc.returncode)
    _emit(args, info, f"{shlex.join(cmd)} -> exit code {proc.returncode}")
    if proc.returncode != 0:
        raise CliError(f"{cmd[0]} failed with exit code {proc.returncode}")
    return 0


def _expected_elf(project: Path) -> Path:
    """Where the project's ELF is (or will be) without building it: the Makefile's TARGET
    (``make print-vars``), else ``firmware.elf``."""
    target = "firmware.elf"
    if (project / "Makefile").is_file() and shutil.which("make"):
        proc = subprocess.run(["make", "-s", "-C", str(project), "print-vars"],
                              capture_output=True, text=True, check=False, timeout=60)
        for line in proc.stdout.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "TARGET" and value.strip():
                target = value.strip()
    return (project / target).resolve()
