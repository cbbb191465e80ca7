"""edgesnn.progress: full bars on a terminal, a plain line every few seconds elsewhere."""

from __future__ import annotations

import ast
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgesnn.progress import progress

PACKAGE = Path(__file__).resolve().parents[1] / "edgesnn"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_lines_off_a_terminal() -> None:
    out = io.StringIO()
    bar = progress(range(10), desc="eval", unit="sample", stream=out, interval=0.0)
    for _ in bar:
        bar.set_postfix(loss="0.5")
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert len(lines) == 11  # one per update at interval 0, and the closing line
    assert lines[3].startswith("eval: 4/10 sample (40 %), ") and "loss=0.5" in lines[3]
    assert "s left" in lines[3]
    assert lines[-1].startswith("eval: 10/10 sample (100 %)") and lines[-1].endswith("(done)")


def test_quiet_when_short_or_disabled() -> None:
    out = io.StringIO()
    with progress(total=5, stream=out, interval=3600) as bar:
        for _ in range(5):
            bar.update()
    with progress(total=5, stream=out, interval=0.0, enabled=False) as bar:
        bar.update(5)
    assert out.getvalue() == ""
    assert bar.n == 5


def test_full_bar_on_a_terminal() -> None:
    out = _Tty()
    with progress(total=3, desc="qat", stream=out, interval=0.0) as bar:
        bar.update(3)
    assert "\r" in out.getvalue() and "qat" in out.getvalue()


def test_training_log_is_lines_not_redraws(tmp_path: Path, mnist_data_dir: Path) -> None:
    env = {**os.environ, "EDGESNN_DATA": str(mnist_data_dir), "OMP_NUM_THREADS": "1",
           "EDGESNN_PROGRESS_INTERVAL": "0"}
    r = subprocess.run([sys.executable, "-m", "edgesnn", "train", "--out", str(tmp_path / "r"),
                        "--hidden", "16", "--steps", "4", "--epochs", "1", "--train-limit", "640",
                        "--test-limit", "100", "--batch-size", "128"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("epoch 1/1: ")]
    assert lines[0].startswith("epoch 1/1: 1/5 batch (20 %)") and "loss=" in lines[0]
    assert lines[-1].startswith("epoch 1/1: 5/5 batch (100 %)")


def test_one_progress_helper() -> None:
    """No module but edgesnn.progress draws its own bars."""
    users = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "progress.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n == "tqdm" or n.startswith(("tqdm.", "rich.progress")) for n in names):
                users.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert users == []


@pytest.mark.parametrize("value,expected", [("2", 2.0), ("x", 5.0), ("-1", 5.0)])
def test_interval_from_environment(monkeypatch: pytest.MonkeyPatch, value: str,
                                   expected: float) -> None:
    monkeypatch.setenv("EDGESNN_PROGRESS_INTERVAL", value)
    assert progress(total=1, stream=io.StringIO()).interval == expected
