"""Start a firmware image where it can run and hand back its serial URL.

:func:`launch` runs an emulated target's ELF in QEMU (``[run]`` of the device profile:
``qemu-system-arm -M MACHINE ... -icount shift=N -serial tcp:127.0.0.1:PORT,server=on,
wait=on,nodelay=on``; URL ``socket://127.0.0.1:PORT``) or the host build of the firmware on a
pseudo-terminal (``BINARY --pty``; URL ``/dev/pts/N``, the path the binary prints). QEMU
drops UART output until a client connects, so the host must speak first (PING).

The returned :class:`DeviceSession` owns the process: ``close()`` terminates it by PID, waits
and kills it if needed; live sessions are also closed at interpreter exit, and (unless
detached) the child gets SIGTERM from the kernel if this process dies. A process that exits
before it is ready raises :class:`LaunchError` with the tail of its output.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from edgesnn.devices import DeviceError, DeviceProfile, load_device

log = logging.getLogger(__name__)

_QEMU_LISTENING = re.compile(r"waiting for connection on:.*tcp:[^:]+:(\d+)")
_PTY_PATH = re.compile(r"(/dev/pts/\d+)")
_PORT_IN_USE = ("Address already in use", "Failed to bind")
_LIVE: weakref.WeakSet[DeviceSession] = weakref.WeakSet()
_PR_SET_PDEATHSIG = 1
#: the Debian package that provides each emulator a profile may name
DEBIAN_PACKAGES = {"qemu-system-arm": "qemu-system-arm",
                   "esnn_simavr": "libsimavr-dev libelf-dev pkg-config, then rebuild: edgesnn "
                                  "build compiles it next to the firmware"}


class LaunchError(RuntimeError):
    """A device could not be started; the message names the command and its output."""


def _profile(device: str | Path | DeviceProfile) -> DeviceProfile:
    """The typed profile for a name, a path to a ``.toml`` or a profile already loaded."""
    if isinstance(device, DeviceProfile):
        return device
    try:
        return load_device(device)
    except DeviceError as exc:
        raise LaunchError(str(exc)) from exc


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the caller retries on a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def emulator_command(profile: DeviceProfile, firmware: Path, serial_arg: str = "") -> list[str]:
    """The emulator's command line for ``firmware``: QEMU (``-M machine``, ``-icount``, the UART
    on ``serial_arg``), or another emulator (simavr's bridge) that serves a pseudo-terminal.
    ``{elf}``, ``{machine}`` and ``{clock_hz}`` in ``[run] args`` are filled in; an emulator
    built with the firmware (``esnn_simavr``) is taken from the firmware's folder."""
    run = profile.run
    if not run.machine:
        raise LaunchError(f"device {profile.name!r}: [run] machine is empty")
    fill = {"{elf}": str(firmware), "{machine}": run.machine,
            "{clock_hz}": str(profile.core.clock_hz)}
    args = []
    for arg in run.args:
        for key, value in fill.items():
            arg = arg.replace(key, value)
        args.append(arg)
    if not run.emulator.startswith("qemu-system-"):
        local = Path(firmware).parent / run.emulator
        on_path = shutil.which(run.emulator) is not None
        return [str(local) if local.is_file() or not on_path else run.emulator, *args]
    cmd = [run.emulator, "-M", run.machine, *args]
    if run.icount_shift is not None:
        cmd += ["-icount", f"shift={run.icount_shift},sleep=off"]
    return cmd + ["-serial", serial_arg]


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


@dataclass(eq=False)
class DeviceSession:
    """A running device: ``url`` (pyserial URL), ``process`` (its Popen), ``log_path`` (its
    stdout+stderr). Use as a context manager or call :meth:`close`."""

    device: str
    url: str
    process: subprocess.Popen[bytes]
    firmware: Path
    command: list[str]
    log_path: Path
    detached: bool = False
    baudrate: int = 115200
    _tmpdir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self, limit: int = 4000) -> str:
        """The last ``limit`` characters the process wrote (stdout and stderr)."""
        return _tail(self.log_path, limit)

    def close(self, timeout: float = 5.0) -> int | None:
        """Terminate the process (SIGTERM, then SIGKILL after ``timeout`` s); return its exit
        code. Idempotent."""
        proc = self.process
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %d) ignored SIGTERM; killing it", self.device, proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
        _LIVE.discard(self)
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None
        return proc.returncode

    def __enter__(self) -> DeviceSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tail(path: Path, limit: int) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", errors="replace")


def _close_all() -> None:
    for session in list(_LIVE):
        if not session.detached:
            with contextlib.suppress(Exception):
                session.close(timeout=2.0)


atexit.register(_close_all)


def _start(cmd: list[str], log_path: Path, detach: bool) -> subprocess.Popen[bytes]:
    log.info("starting: %s", " ".join(cmd))
    with open(log_path, "wb") as out:
        try:
            return subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=detach,
                preexec_fn=None if detach or sys.platform != "linux" else _set_pdeathsig,
            )
        except OSError as exc:
            raise LaunchError(f"cannot run {cmd[0]!r}: {exc}") from exc


def _wait_for(proc: subprocess.Popen[bytes], log_path: Path, pattern: re.Pattern[str],
              timeout: float) -> re.Match[str] | None:
    """Poll the process's output for ``pattern``; None if the process exited first."""
    deadline = time.monotonic() + timeout
    while True:
        match = pattern.search(_tail(log_path, 1 << 16))
        if match:
            return match
        if proc.poll() is not None:
            return None
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.02)


def _fail(what: str, cmd: list[str], proc: subprocess.Popen[bytes], log_path: Path) -> LaunchError:
    code = proc.poll()
    state = f"exited with code {code}" if code is not None else "did not get ready"
    out = _tail(log_path, 2000).strip() or "(no output)"
    return LaunchError(f"{what} {state}: {' '.join(cmd)}\n{out}")


def launch(device: str | Path | DeviceProfile, firmware: Path | str, *, detach: bool = False,
           timeout: float = 15.0, log_path: Path | None = None) -> DeviceSession:
    """Start ``firmware`` on ``device`` (profile name or DeviceProfile) and wait until its
    serial link can be opened.

    Emulated MCUs: ``firmware`` is the ELF, run in QEMU with the UART on a local TCP server.
    ``host``: ``firmware`` is the host-built binary, started with ``--pty``. ``detach=True``
    starts the process in its own session so it outlives this one (the caller stops it by
    PID); ``log_path`` (default: a temporary file) receives its stdout and stderr.
    """
    spec = _profile(device)
    firmware = Path(firmware).resolve()
    if not firmware.is_file():
        raise LaunchError(f"firmware {firmware} does not exist; build it first (edgesnn build)")
    if spec.kind != "host" and not spec.emulated:
        raise LaunchError(f"device {spec.name!r} is a physical board: program it with "
                          "`edgesnn flash` and open its serial port URL")
    tmp = None
    if log_path is None and detach:  # must outlive this process
        log_path = Path(tempfile.mkdtemp(prefix="edgesnn-launch-")) / "device.log"
    elif log_path is None:
        tmp = tempfile.TemporaryDirectory(prefix="edgesnn-launch-")
        log_path = Path(tmp.name) / "device.log"
    log_path = Path(log_path)
    try:
        if spec.kind == "host":
            session = _launch_host(spec, firmware, detach, timeout, log_path)
        else:
            session = _launch_emulator(spec, firmware, detach, timeout, log_path)
    except BaseException:
        if tmp is not None:
            tmp.cleanup()
        raise
    session._tmpdir = tmp
    _LIVE.add(session)
    return session


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _launch_host(spec: DeviceProfile, binary: Path, detach: bool, timeout: float,
                 log_path: Path) -> DeviceSession:
    if not os.access(binary, os.X_OK):
        raise LaunchError(f"host firmware {binary} is not executable")
    return _start_on_pty(spec, "host firmware", [str(binary), "--pty"], binary, detach,
                         timeout, log_path)


def _start_on_pty(spec: DeviceProfile, what: str, cmd: list[str], image: Path, detach: bool,
                  timeout: float, log_path: Path) -> DeviceSession:
    """Start ``cmd`` and wait until it prints the pseudo-terminal it serves on."""
    proc = _start(cmd, log_path, detach)
    try:
        match = _wait_for(proc, log_path, _PTY_PATH, timeout)
    except TimeoutError:
        _stop(proc)
        raise _fail(what, cmd, proc, log_path) from None
    if match is None:
        raise _fail(what, cmd, proc, log_path)
    return DeviceSession(spec.name, match.group(1), proc, image, cmd, log_path, detach,
                         spec.serial.baudrate)


def _launch_emulator(spec: DeviceProfile, elf: Path, detach: bool, timeout: float,
                 log_path: Path) -> DeviceSession:
    exe = emulator_command(spec, elf, "pty")[0]
    if shutil.which(exe) is None:
        package = DEBIAN_PACKAGES.get(spec.run.emulator, spec.run.emulator)
        raise LaunchError(f"device {spec.name!r} needs {spec.run.emulator!r}, which is not "
                          f"found (Debian: apt install {package})")
    if spec.run.serial == "pty":
        return _start_on_pty(spec, spec.run.emulator, emulator_command(spec, elf, "pty"), elf,
                             detach, timeout, log_path)
    if spec.run.serial != "tcp":
        raise LaunchError(f"device {spec.name!r}: [run] serial={spec.run.serial!r}; accepted "
                          "for an emulator: 'tcp', 'pty'")
    for _attempt in range(3):  # another process may grab the free port before QEMU binds it
        port = free_tcp_port()
        cmd = emulator_command(spec, elf, f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on")
        proc = _start(cmd, log_path, detach)
        try:
            match = _wait_for(proc, log_path, _QEMU_LISTENING, timeout)
        except TimeoutError:
            _stop(proc)
            raise _fail("QEMU", cmd, proc, log_path) from None
        if match is not None:
            return DeviceSession(spec.name, f"socket://127.0.0.1:{port}", proc, elf, cmd,
                                 log_path, detach, spec.serial.baudrate)
        if not any(s in _tail(log_path, 4000) for s in _PORT_IN_USE):
            raise _fail("QEMU", cmd, proc, log_path)
        log.info("port %d was taken; retrying", port)
    raise _fail("QEMU", cmd, proc, log_path)
