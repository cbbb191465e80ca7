""".ci/setup: one line per step and the step's output when it fails; the CPU build of torch
asked for explicitly, from PyTorch's CPU index, or the default index when that is unreachable."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parents[1] / ".ci" / "setup"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _bash(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    prelude = (f'source "{SETUP}"\nLOG="{tmp_path}/setup.log"\n'
               f'STEP_LOG="{tmp_path}/step.log"\n')
    return subprocess.run(["bash", "-c", prelude + script], capture_output=True, text=True,
                          timeout=60)


def test_sourcing_defines_and_does_nothing(tmp_path: Path) -> None:
    r = _bash('printf "%s\\n" "${PKGS[@]}"; echo "$TORCH_CPU_INDEX"', tmp_path)
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert "python3-venv" in lines  # a stock Debian python3 has no venv module
    assert lines[-1] == "https://download.pytorch.org/whl/cpu"


def test_step_is_one_line_and_shows_the_output_on_failure(tmp_path: Path) -> None:
    r = _bash('step "saying hello" sh -c "echo dpkg unpacking noise; echo more noise >&2"',
              tmp_path)
    assert r.returncode == 0
    assert r.stdout == "[setup] saying hello ... ok (0 s)\n" and r.stderr == ""
    assert "dpkg unpacking noise" in (tmp_path / "setup.log").read_text()
    r = _bash('step "failing" sh -c "echo why it failed; exit 3"; echo not reached', tmp_path)
    assert r.returncode == 3
    assert r.stdout == "[setup] failing ... FAILED (exit 3)\n"
    assert "why it failed" in r.stderr and str(tmp_path / "setup.log") in r.stderr


def _stub_python(tmp_path: Path) -> Path:
    """A $VPY that records pip calls and runs everything else with this interpreter."""
    stub = tmp_path / "python"
    stub.write_text(f'#!/bin/bash\nif [ "$1" = -m ]; then echo "$*" >> "{tmp_path}/pip.calls"; '
                    f'exit 0; fi\nexec "{sys.executable}" "$@"\n')
    stub.chmod(0o755)
    return stub


def _pip_calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "pip.calls").read_text().splitlines()


def test_torch_from_the_cpu_index_when_it_answers(tmp_path: Path) -> None:
    index = tmp_path / "index"
    (index / "torch").mkdir(parents=True)
    (index / "torch" / "index.html").write_text("<html></html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(index))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/whl/cpu"
        # serve the index at /whl/cpu/
        (index / "whl").mkdir()
        (index / "whl" / "cpu").symlink_to(index)
        r = _bash(f'VPY="{_stub_python(tmp_path)}"; TORCH_CPU_INDEX="{url}"; '
                  'step "torch" install_torch', tmp_path)
    finally:
        server.shutdown()
    assert r.returncode == 0, r.stderr
    assert _pip_calls(tmp_path)[-1] == f"-m pip install --index-url {url} torch==2.13.0"


def test_torch_from_the_default_index_when_the_cpu_index_is_unreachable(tmp_path: Path) -> None:
    r = _bash(f'VPY="{_stub_python(tmp_path)}"; TORCH_CPU_INDEX="http://127.0.0.1:9/whl/cpu"; '
              'step "torch" install_torch', tmp_path)
    assert r.returncode == 0, r.stderr
    assert _pip_calls(tmp_path)[-1] == "-m pip install torch==2.13.0"
    assert "unreachable; installing torch from the default index" in \
        (tmp_path / "setup.log").read_text()
