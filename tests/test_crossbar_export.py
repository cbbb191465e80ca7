"""`edgesnn export --target crossbar` and `edgesnn crossbar-sim`: schema both ways, refusals,
fault maps, the CLI's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgesnn.cli import main
from edgesnn.crossbar.description import DescriptionError, read_description, validate
from edgesnn.crossbar.faults import save_stuck_map
from edgesnn.crossbar.sim import STUCK_GMAX, STUCK_GMIN
from edgesnn.export.base import ExportError, get_target
from edgesnn.graph.esg import write_esg
from edgesnn.graph.synth import random_graph


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("xbar") / "run"
    d.mkdir()
    write_esg(random_graph(5, input_size=784, hidden=(24,), n_classes=10, steps=6, bias=True),
              d / "model.esg")
    return d


@pytest.fixture(scope="module")
def exported(run_dir: Path, mnist_data_dir: Path) -> Path:
    out = run_dir.parent / "out" / "xb.json"
    summary = get_target("crossbar").export(
        run_dir, out, device="rram-1t1r", levels=256, rows=128, cols=32, calib_samples=64,
        data_dir=str(mnist_data_dir))
    assert summary["arrays_used"] == 7 * 2 + 1 * 1
    return out


def test_description_validates_both_ways(exported: Path) -> None:
    doc = json.loads(exported.read_text())
    validate(doc)
    assert doc["schema_version"] == "1.0" and doc["mapping"]["style"] == "differential"
    assert doc["crosssim"]["core"]["style"] == "BALANCED"
    assert doc["aihwkit"]["InferenceRPUConfig"]["mapping"]["max_input_size"] == 128
    model = read_description(exported)
    assert model.mapping.arrays_used == 15
    lm = model.mapping.layers[0]
    np.testing.assert_array_equal(lm.logical_levels(), model.graph.layers[0].weights)
    # biases: stated in the description and realised as the periphery's digital add
    neuron = doc["layers"][0]["neuron"]
    assert neuron["bias"] == model.graph.layers[0].bias.tolist() == lm.bias.tolist()
    assert neuron["bias_realisation"].startswith("digital add")
    assert lm.adc_range.max() <= lm.rows * 255  # calibrated, never above full scale


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d["mapping"].pop("cells_sha256"), "cells_sha256"),
    (lambda d: d["technology"]["technology"].__setitem__("levels", 0),
     "technology/technology/levels"),
    (lambda d: d["layers"][0]["neuron"].__setitem__("reset", "maybe"), "layers/0/neuron/reset"),
    (lambda d: d["inputs"].__setitem__("dac_bits", 4), "inputs/dac_bits"),
    (lambda d: d["provenance"].__setitem__("model_hash", "xyz"), "provenance/model_hash"),
])
def test_broken_description_fails_naming_field(exported: Path, tmp_path: Path, mutate,
                                                needle: str) -> None:
    doc = json.loads(exported.read_text())
    mutate(doc)
    with pytest.raises(DescriptionError, match=needle):
        validate(doc)
    bad = exported.parent / "broken.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(DescriptionError, match=needle):
        read_description(bad)


def test_version_and_hash_mismatch_refused(exported: Path) -> None:
    doc = json.loads(exported.read_text())
    folder = exported.parent
    v2 = dict(doc, schema_version="2.0")
    (folder / "v2.json").write_text(json.dumps(v2))
    with pytest.raises(DescriptionError, match="schema_version"):
        read_description(folder / "v2.json")
    other = json.loads(exported.read_text())
    other["provenance"]["model_hash"] = "0" * 32
    (folder / "hash.json").write_text(json.dumps(other))
    with pytest.raises(DescriptionError, match="model_hash"):
        read_description(folder / "hash.json")
    cells = folder / doc["mapping"]["cells_file"]
    raw = cells.read_bytes()
    try:
        cells.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
        with pytest.raises(DescriptionError, match="SHA-256"):
            read_description(exported)
    finally:
        cells.write_bytes(raw)
    read_description(exported)


def test_model_too_large_names_arrays_needed(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"needs 15 arrays.*13 more arrays needed"):
        get_target("crossbar").export(run_dir, tmp_path / "x.json", device="rram-1t1r",
                                      rows=128, cols=32, arrays=2, adc_range="full")
    assert not (tmp_path / "x.json").exists()


def test_cli_ideal_equals_golden_and_reports(exported: Path, mnist_data_dir: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["crossbar-sim", str(exported), "--samples", "60", "--trials", "2", "--ideal",
               "--json", "--data-dir", str(mnist_data_dir)])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["agreement_with_golden"] == 1.0
    assert out["accuracy"] == out["golden_accuracy"] and out["accuracy_std"] == 0.0
    for key in ("energy_per_inference_pj", "energy_breakdown", "latency_per_inference_s"):
        assert key in out
    assert out["energy_per_inference_pj"] == pytest.approx(sum(out["energy_breakdown"].values()))
    rc = main(["crossbar-sim", str(exported), "--samples", "40", "--trials", "2", "--json",
               "--sweep", "variation=0:0.2:0.1", "--data-dir", str(mnist_data_dir)])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    pts = out["sweep"]["points"]
    assert [p["value"] for p in pts] == [0.0, 0.1, 0.2]
    assert Path(out["sweep"]["plot"]).stat().st_size > 1000


def test_export_with_stuck_map_remaps_and_sim_uses_it(run_dir: Path, mnist_data_dir: Path,
                                                       tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    stuck = np.zeros((15, 128, 32), dtype=np.int8)
    rng = np.random.default_rng(1)
    stuck[rng.random(stuck.shape) < 0.04] = STUCK_GMIN
    stuck[rng.random(stuck.shape) < 0.01] = STUCK_GMAX
    sm = tmp_path / "faults.json"
    save_stuck_map(stuck, sm)
    out = tmp_path / "fa.json"
    summary = get_target("crossbar").export(
        run_dir, out, device="rram-1t1r", levels=256, rows=128, cols=32, adc_range="full",
        stuck_map=str(sm))
    assert any("fault-aware remap" in n for n in summary["notes"])
    model = read_description(out)
    np.testing.assert_array_equal(model.fault_map, stuck)
    naive = tmp_path / "naive.json"
    get_target("crossbar").export(run_dir, naive, device="rram-1t1r", levels=256, rows=128,
                                  cols=32, adc_range="full")
    accs = {}
    for name, path in (("remapped", out), ("naive", naive)):
        rc = main(["crossbar-sim", str(path), "--samples", "60", "--trials", "1", "--ideal",
                   "--stuck-map", str(sm), "--json", "--data-dir", str(mnist_data_dir)])
        assert rc == 0
        accs[name] = json.loads(capsys.readouterr().out)["agreement_with_golden"]
    assert accs["remapped"] >= accs["naive"]
    rc = main(["crossbar-sim", str(naive), "--samples", "40", "--trials", "1", "--ideal",
               "--stuck-map", str(sm), "--remap", "--json", "--data-dir", str(mnist_data_dir)])
    r = json.loads(capsys.readouterr().out)["remap"]
    assert r["agreement_after"] >= r["agreement_before"]


def test_cli_errors_are_one_line(exported: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crossbar-sim", str(tmp_path / "nope.json")]) == 2
    assert "cannot read crossbar description" in capsys.readouterr().err
    assert main(["crossbar-sim", str(exported), "--sweep", "bogus=1:2:1"]) == 2
    assert "accepted" in capsys.readouterr().err
