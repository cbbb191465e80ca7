"""``edgesnn flash DIR --device NAME [--json] [--detach] [--dry-run]``.

Puts a generated firmware project (``edgesnn export --target c``) on a device:

* emulated MCUs (QEMU profiles): builds if needed, runs the ELF in QEMU and prints the serial
  URL. In the foreground until Ctrl-C / SIGTERM, then stops QEMU; ``--detach`` leaves it
  running and prints its PID and how to stop it.
* ``host``: builds if needed and starts the host binary on a pseudo-terminal, same lifecycle.
* physical boards: builds if needed and runs the profile's ``[flash] command``; with
  ``--dry-run``, or when the tool is not installed, prints the exact command instead.
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
                   help="physical boards: print the flash command instead of running it")
    p.add_argument("--timeout", type=float, default=15.0, metavar="S",
                   help="seconds to wait for the device's serial link (default 15)")
    p.set_defaults(func=run)


def _profile(name: str) -> Any:
    from edgesnn.devices import load_device

    try:
        return load_device(name)
    except (FileNotFoundError, KeyError, ValueError) as exc:
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


def run(args: argparse.Namespace) -> int:
    from edgesnn.host.launch import LaunchError, launch, run_spec

    project: Path = args.project
    if not project.is_dir():
        raise CliError(f"project directory {project} does not exist "
                       "(make one with `edgesnn export RUN_DIR --target c --device NAME`)")
    profile = _profile(args.device)
    spec = run_spec(profile)
    if spec.kind == "board" or (spec.kind != "host" and not spec.emulator):
        return _flash_board(args, profile, spec.name)

    firmware = _build(project)
    log_path = project / "build" / f"{spec.name}-run.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        session = launch(profile, firmware, detach=args.detach, timeout=args.timeout,
                         log_path=log_path)
    except LaunchError as exc:
        raise CliError(str(exc).splitlines()[0] + f" (log: {log_path})") from exc
    info = {"device": spec.name, "url": session.url, "pid": session.pid,
            "firmware": str(firmware), "log": str(log_path), "detached": bool(args.detach)}
    if args.detach:
        _emit(args, info, f"{spec.name}: {session.url}\npid {session.pid}; stop it with: "
              f"kill {session.pid}\nlog: {log_path}")
        return 0
    _emit(args, info, f"{spec.name}: {session.url} (pid {session.pid}); Ctrl-C to stop")
    return _foreground(session)


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


def _flash_board(args: argparse.Namespace, profile: Any, name: str) -> int:
    from edgesnn.host.launch import _get

    template = _get(profile, "flash", "command") or _get(_get(profile, "raw"), "flash",
                                                         "command")
    if not template:
        raise CliError(f"device {name!r} has no emulator and no [flash] command in its profile")
    template = [str(a) for a in template]
    elf = _build(args.project) if not args.dry_run else _expected_elf(args.project)
    cmd = flash_command(template, elf)
    tool = shutil.which(cmd[0])
    info: dict[str, Any] = {"device": name, "command": cmd, "firmware": str(elf)}
    if args.dry_run or tool is None:
        reason = "dry run" if args.dry_run else f"{cmd[0]} is not installed"
        info.update(ran=False, reason=reason)
        _emit(args, info, f"{reason}; would run:\n{shlex.join(cmd)}")
        return 0 if args.dry_run else 1
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
