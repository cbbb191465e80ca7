"""edgesnn.host.launch: profiles -> command lines, process lifecycle, no orphans.

The QEMU cases run the Cortex-M port self-test firmware (no model) and are marked ``qemu``;
the rest use small stand-in executables for the host build.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edgesnn.host.launch import DeviceSession, LaunchError, emulator_command, launch
from tests.test_qemu import (
    build_selftest,
    load_profile,
    need_arm_toolchain,
    pid_alive,
    selftest_exchange,
)


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_launch_reads_the_typed_profile() -> None:
    lm3s = load_profile("lm3s6965evb")
    assert (lm3s.kind, lm3s.run.emulator, lm3s.run.machine) == ("mcu", "qemu-system-arm",
                                                                 "lm3s6965evb")
    assert lm3s.run.icount_shift == 7 and lm3s.run.serial == "tcp" and lm3s.emulated
    board = load_profile("nucleo-l4r5zi")
    assert board.kind == "board" and not board.emulated
    with pytest.raises(LaunchError, match="physical board"):
        launch(board, Path(__file__))
    with pytest.raises(LaunchError, match="unknown device 'no-such-board'"):
        launch("no-such-board", Path(__file__))


def test_qemu_command_line(tmp_path: Path) -> None:
    spec = load_profile("lm3s6965evb")
    elf = tmp_path / "firmware.elf"
    cmd = emulator_command(spec, elf, "tcp:127.0.0.1:4444,server=on,wait=on,nodelay=on")
    assert cmd[:3] == ["qemu-system-arm", "-M", "lm3s6965evb"]
    assert cmd[cmd.index("-kernel") + 1] == str(elf)
    assert cmd[cmd.index("-icount") + 1] == "shift=7,sleep=off"
    assert cmd[-2:] == ["-serial", "tcp:127.0.0.1:4444,server=on,wait=on,nodelay=on"]
    assert "{elf}" not in " ".join(cmd)


def test_host_binary_pty_url_and_close(tmp_path: Path) -> None:
    fake = _script(tmp_path, "esnn_host", """\
        echo "edgesnn host device on /dev/pts/77"
        trap 'exit 0' TERM
        while :; do sleep 0.05; done
        """)
    with launch("host", fake) as session:
        assert isinstance(session, DeviceSession)
        assert session.url == "/dev/pts/77"
        assert session.alive()
        pid = session.pid
    assert session.process.returncode is not None
    assert not pid_alive(pid)


def test_close_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    stubborn = _script(tmp_path, "esnn_host", """\
        trap '' TERM
        echo /dev/pts/3
        while :; do sleep 0.05; done
        """)
    session = launch("host", stubborn)
    t0 = time.monotonic()
    code = session.close(timeout=0.5)
    assert code == -signal.SIGKILL
    assert time.monotonic() - t0 < 5
    assert not pid_alive(session.pid)


def test_early_exit_is_a_clear_error_with_output(tmp_path: Path) -> None:
    dying = _script(tmp_path, "esnn_host", """\
        echo "cannot open model: bad CRC" >&2
        exit 3
        """)
    with pytest.raises(LaunchError, match=r"exited with code 3[\s\S]*bad CRC"):
        launch("host", dying)


def test_missing_firmware_and_physical_board(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="does not exist"):
        launch(load_profile("lm3s6965evb"), tmp_path / "nope.elf")
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(b"\x7fELF")
    with pytest.raises(LaunchError, match="physical board"):
        launch(load_profile("nucleo-l4r5zi"), elf)


def test_no_orphan_when_the_owner_exits_without_close(tmp_path: Path) -> None:
    fake = _script(tmp_path, "esnn_host", """\
        echo /dev/pts/9
        while :; do sleep 0.05; done
        """)
    code = textwrap.dedent(f"""\
        from edgesnn.host.launch import launch
        s = launch("host", {str(fake)!r})
        print(s.pid, flush=True)
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30, cwd=Path(__file__).resolve().parents[1], check=True)
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid), "the launched process outlived its owner (atexit)"


def test_no_orphan_when_the_owner_is_killed(tmp_path: Path) -> None:
    fake = _script(tmp_path, "esnn_host", """\
        echo /dev/pts/9
        while :; do sleep 0.05; done
        """)
    code = textwrap.dedent(f"""\
        import time
        from edgesnn.host.launch import launch
        s = launch("host", {str(fake)!r})
        print(s.pid, flush=True)
        time.sleep(60)
        """)
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[1])
    try:
        assert owner.stdout is not None
        pid = int(owner.stdout.readline().split()[0])
        assert pid_alive(pid)
        owner.kill()  # SIGKILL: no atexit; the kernel's parent-death signal must do it
        owner.wait(timeout=10)
        deadline = time.monotonic() + 5
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(pid), "the launched process outlived its SIGKILLed owner"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


@pytest.mark.qemu
def test_qemu_launch_round_trip_and_close(tmp_path: Path) -> None:
    need_arm_toolchain()
    elf = build_selftest("lm3s6965evb", tmp_path)
    with launch(load_profile("lm3s6965evb"), elf) as session:
        assert session.url.startswith("socket://127.0.0.1:")
        unit, n, count = selftest_exchange(session.url, 0)
        assert (unit, n) == (1, 1000)
        assert 2000 <= count <= 2100
        pid = session.pid
    assert not pid_alive(pid)
    assert session.process.returncode is not None


@pytest.mark.qemu
def test_qemu_detached_session_survives_and_stops_by_pid(tmp_path: Path) -> None:
    need_arm_toolchain()
    elf = build_selftest("mps2-an386", tmp_path)
    session = launch(load_profile("mps2-an386"), elf, detach=True,
                     log_path=tmp_path / "qemu.log")
    try:
        assert os.getsid(session.pid) == session.pid  # its own session: survives the shell
        assert selftest_exchange(session.url, 1)[:2] == (1, 10000)
    finally:
        session.close()
    assert not pid_alive(session.pid)


# ------------------------------------------------------------------------------------------
# edgesnn flash


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from edgesnn.cli import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_flash_board_dry_run_prints_the_exact_command(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    code, out, _ = _cli(["flash", str(tmp_path), "--device", "nucleo-l4r5zi", "--dry-run",
                         "--json"], capsys)
    assert code == 0
    info = json.loads(out)
    assert info["ran"] is False and info["device"] == "nucleo-l4r5zi"
    assert info["command"][:4] == ["pyocd", "flash", "--target", "stm32l4r5zitx"]
    assert info["command"][-1].endswith(".elf")
    code, out, _ = _cli(["flash", str(tmp_path), "--device", "nucleo-l4r5zi", "--dry-run"],
                        capsys)
    assert code == 0 and "pyocd flash --target stm32l4r5zitx" in out


def test_flash_rejects_a_missing_project_and_unknown_device(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(["flash", str(tmp_path / "nope"), "--device", "lm3s6965evb"], capsys)
    assert code == 2 and "does not exist" in err
    code, _, err = _cli(["flash", str(tmp_path), "--device", "no-such-board"], capsys)
    assert code == 2 and "no-such-board" in err


def _exported_project(tmp_path: Path, device: str) -> Path:
    from edgesnn.export.c import TARGET
    from edgesnn.graph import esg
    from edgesnn.graph.synth import random_graph

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    graph = random_graph(2, input_size=40, hidden=(12,), n_classes=4, steps=6)
    (run_dir / "model.esg").write_bytes(esg.encode(graph))
    project = tmp_path / "project"
    TARGET.export(run_dir, project, device=device)
    return project


@pytest.mark.qemu
def test_flash_foreground_runs_qemu_until_sigterm(tmp_path: Path) -> None:
    import json

    from tests.test_qemu import Link

    need_arm_toolchain()
    project = _exported_project(tmp_path, "lm3s6965evb")
    cli = subprocess.Popen([sys.executable, "-m", "edgesnn", "flash", str(project), "--device",
                            "lm3s6965evb", "--json"], stdout=subprocess.PIPE, text=True,
                           cwd=Path(__file__).resolve().parents[1])
    try:
        assert cli.stdout is not None
        info = json.loads(cli.stdout.readline())
        assert info["device"] == "lm3s6965evb" and info["url"].startswith("socket://")
        assert (project / "firmware.elf").is_file()  # built on the way
        link = Link(info["url"])
        try:
            assert link.hello().board == "lm3s6965evb"
        finally:
            link.close()
        assert pid_alive(info["pid"])
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=20) == 0
        deadline = time.monotonic() + 5
        while pid_alive(info["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(info["pid"]), "QEMU outlived `edgesnn flash`"
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()


@pytest.mark.qemu
def test_flash_detach_leaves_qemu_running(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from tests.test_qemu import Link

    need_arm_toolchain()
    project = _exported_project(tmp_path, "mps2-an386")
    code, out, _ = _cli(["flash", str(project), "--device", "mps2-an386", "--detach",
                         "--json"], capsys)
    info = json.loads(out)
    try:
        assert code == 0 and info["detached"] is True
        assert pid_alive(info["pid"])
        link = Link(info["url"])
        try:
            assert link.hello().board == "mps2-an386"
        finally:
            link.close()
    finally:
        os.kill(info["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 5
    while pid_alive(info["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(info["pid"])
