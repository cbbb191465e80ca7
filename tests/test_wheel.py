"""firmware/, exporters/ and devices/ ship inside the wheel: an installed edgesnn (here: the
wheel unpacked outside the checkout) finds them and generates + builds firmware with them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                    reason="gcc/make not installed")
def test_wheel_carries_firmware_exporters_and_devices(tmp_path: Path) -> None:
    try:
        import hatchling  # noqa: F401
    except ImportError:
        pytest.skip("hatchling not installed (pip install hatchling)")
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(out), str(ROOT)], check=True)
    wheel = next(out.glob("edgesnn-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        zf.extractall(site)
    for must in ("edgesnn/_share/exporters/spikegraph/SPEC.md",
                 "edgesnn/_share/firmware/runtime/esnn_infer.c",
                 "edgesnn/_share/firmware/ports/lm3s6965evb/common/cm_startup.c",
                 "edgesnn/_share/exporters/c/main.c.j2",
                 "edgesnn/_share/devices/host.toml"):
        assert must in names, must
    code = f"""
import edgesnn, edgesnn._resources as r
from pathlib import Path
assert Path(edgesnn.__file__).is_relative_to({str(site)!r}), edgesnn.__file__
assert r.share_root() == Path({str(site)!r}) / "edgesnn" / "_share", r.share_root()
from edgesnn.graph.esg import write_esg
from edgesnn.graph.synth import random_graph
run = Path({str(tmp_path / "run")!r}); run.mkdir()
write_esg(random_graph(4, input_size=16, hidden=(8,), n_classes=3, steps=4), run / "model.esg")
from edgesnn.export import get_target
get_target("c").export(run, run / "fw", device="host")
from edgesnn.build import build_project
print(build_project(run / "fw").elf)
"""
    env = {**os.environ, "PYTHONPATH": str(site)}
    res = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert Path(res.stdout.strip().splitlines()[-1]).is_file()
