"""The comparison report: JSON keys, re-rendering without a device, and the HTML report as a
browser sees it (headless Chromium: every image decodes, no console errors)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgesnn.cli import main
from edgesnn.graph.esg import write_esg
from edgesnn.graph.synth import random_graph, random_pixels
from edgesnn.host.simdevice import SimDevice, SimDeviceTransport
from edgesnn.pipeline import report
from edgesnn.pipeline.evaluation import EvalOptions, OpenDevice, evaluate_devices

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium")
                                        else None)
KEYS = ("samples", "device", "float_accuracy", "golden_accuracy", "device_accuracy",
        "agreement", "latency", "energy")


pytestmark = pytest.mark.timeout(180)  # a hang fails instead of stalling the suite

@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("run")
    graph = random_graph(4, input_size=64, hidden=(32,), n_classes=10, steps=6)
    write_esg(graph, run_dir / "model.esg")
    px = random_pixels(2, 80, 64)
    labels = np.random.default_rng(1).integers(0, 10, 80)
    dev = OpenDevice("sim", "sim", SimDeviceTransport(SimDevice.from_esg(run_dir / "model.esg")))
    evaluate_devices(run_dir, [], EvalOptions(progress=False, timeout=0.2), images=px,
                     labels=labels, opened=[dev])
    report(run_dir)
    return run_dir


def test_report_json_has_the_keys(evaluated: Path) -> None:
    rep = json.loads((evaluated / "report.json").read_text())
    for k in KEYS:
        assert k in rep, k
    assert rep["samples"] == 80 and rep["agreement"] == 1.0
    assert rep["golden_accuracy"] == rep["device_accuracy"]
    assert sum(map(sum, rep["confusion"]["matrix"])) == 80
    assert rep["latency"]["unit_label"] == "ns (host)"
    e = rep["energy"]
    assert e["naive"]["snn_pj"] > 0 and e["memory_aware"]["ann_int8_pj"] > 0
    assert "Horowitz" in e["naive"]["constants"]["int32_add"]["source"]
    assert "Lemaire" in e["memory_aware"]["constants"]["ram_slope"]["source"]
    nb = rep["neurobench"]
    assert set(nb["synaptic_operations"]) == {"dense", "effective_macs", "effective_acs"}
    # the evaluation stored the golden ops on non-zero weights: NeuroBench's effective ops
    assert nb["synaptic_operations_basis"].startswith("NeuroBench")
    assert e["memory_aware_sram"]["model"] == "horowitz_sram"
    assert 0 <= nb["activation_sparsity"] <= 1


def test_report_command_rerenders_without_device(evaluated: Path, capsys) -> None:
    (evaluated / "report.json").unlink()
    assert main(["report", str(evaluated), "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    rep = json.loads(out[0])
    for k in KEYS:
        assert k in rep
    assert (evaluated / "report.json").exists() and (evaluated / "report.html").exists()


def test_report_command_without_results_is_a_clear_error(tmp_path: Path, capsys) -> None:
    write_esg(random_graph(1), tmp_path / "model.esg")
    assert main(["report", str(tmp_path)]) == 2
    assert "no results" in capsys.readouterr().err


def test_html_is_self_contained(evaluated: Path) -> None:
    text = (evaluated / "report.html").read_text()
    assert "<script" not in text
    assert not re.search(r"""(src|href)=["'](?!data:)""", text), "external resource"
    assert text.count("data:image/png;base64,") >= 6  # accuracy .. raster


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_html_renders_in_headless_chromium(evaluated: Path, tmp_path: Path) -> None:
    # the check script goes into a copy, so the report itself stays script-free
    page = tmp_path / "check.html"
    check = ("<script>window.addEventListener('load',()=>{const imgs=[...document.images];"
             "const bad=imgs.filter(i=>!(i.complete&&i.naturalWidth>0)).length;"
             "document.body.setAttribute('data-check',`imgs=${imgs.length} bad=${bad}`);});"
             "</script></body>")
    page.write_text((evaluated / "report.html").read_text().replace("</body>", check))
    profile = tmp_path / "profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           "--virtual-time-budget=5000", "--dump-dom", page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    m = re.search(r'data-check="imgs=(\d+) bad=(\d+)"', proc.stdout)
    assert m, f"chromium did not run the check: {proc.stderr[-2000:]}"
    assert int(m.group(1)) >= 6 and int(m.group(2)) == 0
    console = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln]
    assert not console, console


def test_the_report_says_why_samples_failed(tmp_path: Path) -> None:
    from edgesnn.host.protocol import MsgType
    from tests.test_faults import Scripted, _error

    write_esg(random_graph(4, input_size=64, hidden=(32,), n_classes=10, steps=6),
              tmp_path / "model.esg")
    px = random_pixels(3, 12, 64)
    seen = [0]

    def answer(frame, reply: bytes) -> bytes:
        if frame.type in (MsgType.DATA, MsgType.INFER) and frame.flags:
            seen[0] += 1
            if seen[0] % 4 == 0:
                return _error(frame.seq, "ERR_INPUT_SIZE")
        return reply

    dev = Scripted(SimDevice.from_esg(tmp_path / "model.esg"), answer)
    evaluate_devices(tmp_path, [], EvalOptions(progress=False, timeout=0.5), images=px,
                     labels=np.zeros(12, dtype=np.int64), opened=[OpenDevice("sim", "sim", dev)])
    rep = report(tmp_path)
    assert rep["failure_count"] == 3
    assert rep["failure_reasons"] == {"device error ESNN_ERR_INPUT_SIZE": 3}
    assert "3 × device error ESNN_ERR_INPUT_SIZE" in (tmp_path / "report.html").read_text()
