"""Commands that need no training start fast: they never import torch (nor pyserial, except
those that open a link). Checked on what each command actually imports, in a fresh
interpreter, rather than on wall-clock time (which moves with the machine's load)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgesnn.cli import build_parser
from edgesnn.graph.esg import write_esg
from edgesnn.graph.synth import random_graph

# Runs the CLI in-process and reports its exit code and the heavy modules it loaded.
PROBE = """
import sys
from edgesnn.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as exc:
    rc = exc.code
heavy = sorted(m for m in ("torch", "serial", "numpy") if m in sys.modules)
sys.stderr.write("\\nPROBE %r %s\\n" % (rc, ",".join(heavy)))
"""


def _probe(*argv: str) -> tuple[int, list[str], str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True,
                          text=True, timeout=120)
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("PROBE ")]
    assert line, proc.stderr[-2000:]
    _, rc, *heavy = line[-1].split(" ")
    return int(rc), (heavy[0].split(",") if heavy and heavy[0] else []), proc.stderr


def _commands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fast")
    run = root / "run"  # a compressed run without model.pt: the golden model is the reference
    write_esg(random_graph(3, input_size=784, hidden=(24,), n_classes=10, steps=6),
              run / "model.esg")
    return root


def test_help_and_every_command_help_load_no_torch() -> None:
    rc, heavy, err = _probe("--help")  # building the whole parser: not even numpy
    assert (rc, heavy) == (0, []), err
    for name in sorted(_commands()):
        rc, heavy, err = _probe(name, "--help")
        assert rc == 0 and "torch" not in heavy and "serial" not in heavy, \
            f"edgesnn {name} --help: {heavy} {err[-800:]}"


def test_deploy_and_evaluate_commands_load_no_torch(work: Path) -> None:
    run, fw = work / "run", work / "fw"
    steps: list[tuple[str, ...]] = [
        ("inspect", str(run / "model.esg")),
        ("inspect", str(run / "model.esg"), "--json"),
        ("export", str(run), "--target", "esg", "--out", str(work / "copy.esg")),
        ("export", str(run), "--target", "c", "--device", "host", "--out", str(fw)),
        ("build", str(fw)),
        ("flash", str(fw), "--device", "host", "--dry-run"),
        ("eval", str(run), "--device", "sim", "--samples", "12", "--json"),
        ("report", str(run), "--no-html"),
    ]
    if "devices" in _commands():
        steps.append(("devices",))
    for argv in steps:
        rc, heavy, err = _probe(*argv)
        assert rc == 0, f"edgesnn {' '.join(argv)}: {err[-1500:]}"
        assert "torch" not in heavy, f"edgesnn {' '.join(argv)} imported torch"
        if argv[0] != "eval":  # only eval opens a serial link
            assert "serial" not in heavy, f"edgesnn {' '.join(argv)} imported pyserial"
