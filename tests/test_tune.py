"""``edgesnn tune``: the cost model's fit, the Pareto front, infeasible trials, two worker
processes on one journal storage, and (QEMU) a whole search with calibration and measurement."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgesnn.devices import load_device
from edgesnn.export.c import device_arena_bytes, fit_report
from edgesnn.graph.esg import read_esg
from edgesnn.graph.golden import simulate
from edgesnn.graph.synth import random_graph
from edgesnn.pipeline.costmodel import BASE_FEATURES, KINDS, CostModel, features, fit
from edgesnn.pipeline.tune import COSTMODEL_ATTR, open_storage, pareto_front

optuna = pytest.importorskip("optuna")
pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[1]
DATA = os.environ.get("EDGESNN_DATA", str(ROOT.parent / "shared" / "data"))
TINY = ["--train-limit", "200", "--test-limit", "100", "--epochs", "1", "--seed", "0"]


def _dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def test_pareto_front_is_exactly_the_non_dominated_set() -> None:
    pts = [(0.9, 100.0), (0.8, 50.0), (0.85, 120.0), (0.9, 90.0), (0.7, 50.0), (0.95, 300.0)]
    assert pareto_front(pts) == [1, 3, 5]  # cost order
    rng = np.random.default_rng(1)
    pts = [(float(a), float(c)) for a, c in zip(rng.random(40), rng.random(40), strict=True)]
    front = set(pareto_front(pts))
    for i, p in enumerate(pts):
        assert (i in front) == (not any(_dominates(q, p) for q in pts)), i


def test_cost_model_recovers_known_coefficients_and_reports_held_out_error() -> None:
    truth = {"intercept": 2000.0, "neuron_steps": 40.0, "pixel_steps_rate": 6.0,
             "output_spikes": 30.0, "pre_dense8": 25.0, "dense8": 4.0, "pre_sparse8": 60.0,
             "sparse8": 9.0}
    rows = []
    for i, (h, t, storage) in enumerate([(32, 8, "dense"), (64, 4, "sparse"), (48, 6, "dense"),
                                         (96, 5, "sparse"), (24, 10, "sparse")]):
        g = random_graph(i, input_size=784, hidden=(h,), n_classes=10, steps=t,
                         storage=storage, density=0.4 if storage == "sparse" else 1.0)
        px = np.random.default_rng(i).integers(0, 256, (9, 784), dtype=np.uint8)
        sim = simulate(g, px)
        f = features(g, sim.ops, sim.spikes, sim.input_spikes)
        assert set(f) == {*BASE_FEATURES, *KINDS}
        cost = sum(truth.get(k, 0.0) * v for k, v in f.items())
        rows.append((f, cost))
    model = fit("lm3s6965evb", "instructions", rows)
    cal = model.calibration
    assert cal["held_out"] == 5 * 3 and math.isfinite(cal["held_out_mape_pct"])
    assert cal["held_out_mape_pct"] < 1e-6  # exact linear data: the fit is exact
    for f, cost in rows:
        np.testing.assert_allclose(model.predict(f), cost, rtol=1e-9)
    # a kind never calibrated is priced at the mean of the calibrated ones, not for free
    g4 = random_graph(9, input_size=784, hidden=(32,), n_classes=10, steps=4, weight_bits=4)
    sim = simulate(g4, np.full((1, 784), 200, np.uint8))
    f4 = features(g4, sim.ops, sim.spikes, sim.input_spikes)
    want = (2000 + 40 * f4["neuron_steps"] + 6 * f4["pixel_steps_rate"]
            + 30 * f4["output_spikes"] + (4.0 + 9.0) / 2 * f4["dense4"]
            + (25.0 + 60.0) / 2 * f4["pre_dense4"])
    assert f4["dense4"][0] > 0
    np.testing.assert_allclose(model.predict(f4), want, rtol=1e-9)
    again = CostModel.from_json(json.loads(json.dumps(model.to_json())))
    np.testing.assert_allclose(again.predict(rows[1][0]), model.predict(rows[1][0]))


def _fake_costmodel() -> dict:
    """A cost model with plausible Cortex-M3 coefficients, so the worker test needs no QEMU
    (the QEMU test below calibrates a real one)."""
    coef = {"intercept": 2200.0, "neuron_steps": 45.0, "pixel_steps_rate": 5.0,
            "pixel_steps_latency": 3.0, "output_spikes": 30.0,
            **{k: 4.0 for k in KINDS}, **{f"pre_{k}": 30.0 for k in KINDS}}
    return CostModel("arduino-mega2560", "cycles", coef, {"models": 0}).to_json()


def test_two_workers_on_one_journal_lose_no_trial_and_run_none_twice(tmp_path: Path) -> None:
    """Two ``--worker`` processes share one journal file; the device (ATmega2560: 256 KB flash,
    8 KB RAM) makes the larger hidden layer infeasible (its arena does not fit the RAM)."""
    journal = tmp_path / "journal.log"
    study = optuna.create_study(storage=open_storage(str(journal)), study_name="t",
                                directions=["maximize", "minimize"])
    study.set_user_attr(COSTMODEL_ATTR, _fake_costmodel())
    n = 4
    cmd = [sys.executable, "-m", "edgesnn", "tune", str(tmp_path / "out"), "--device",
           "arduino-mega2560", "--storage", str(journal), "--study-name", "t", "--worker",
           "--trials", str(n), "--hidden", "16", "400", "--steps", "3", "4",
           "--sparsity", "0.0", "0.5", "--json", *TINY]
    env = {**os.environ, "EDGESNN_DATA": DATA, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for _ in range(2)]
    outs = [p.communicate(timeout=560) for p in procs]
    for p, (_so, se) in zip(procs, outs, strict=True):
        assert p.returncode == 0, se[-3000:]
    ran = [json.loads(so.strip().splitlines()[-1])["trials_run"] for so, _ in outs]

    study = optuna.load_study(storage=open_storage(str(journal)), study_name="t")
    trials = study.get_trials()
    counted = [t for t in trials if not t.user_attrs.get("surplus")]
    assert sorted(t.number for t in counted) == list(range(n)), "a trial number lost"
    assert sum(ran) == n, f"workers report {ran} trials for {n} in the study"
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in counted), \
        [(t.number, t.state, t.user_attrs.get("error")) for t in counted]
    dirs = [t.user_attrs["run_dir"] for t in counted]
    assert len(set(dirs)) == n and sorted(p.name for p in (tmp_path / "out" / "trials")
                                          .iterdir()) == [f"{i:05d}" for i in range(n)]
    profile = load_device("arduino-mega2560")
    for t in counted:
        g = read_esg(Path(t.user_attrs["run_dir"]) / "model.esg")
        fitr = fit_report(profile, (Path(t.user_attrs["run_dir"]) / "model.esg").stat().st_size,
                          device_arena_bytes(g, profile))
        assert t.user_attrs["feasible"] == fitr["fits"], t.number
        assert (max(t.user_attrs["constraints"]) <= 0) == fitr["fits"]
        assert g.layers[0].n_out == t.params["hidden"] and g.steps == t.params["steps"]
        assert 0.0 <= t.values[0] <= 1.0 and t.values[1] > 2200.0
    big = [t for t in counted if t.params["hidden"] == 400]
    assert all(not t.user_attrs["feasible"] for t in big)


needs_qemu = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("qemu-system-arm", "arm-none-eabi-gcc", "make")),
    reason="qemu-system-arm / arm-none-eabi-gcc not installed")


@pytest.mark.qemu
@needs_qemu
def test_tune_on_qemu_calibrates_searches_and_measures_the_front(tmp_path: Path) -> None:
    out = tmp_path / "tune"
    cmd = [sys.executable, "-m", "edgesnn", "tune", str(out), "--device", "lm3s6965evb",
           "--trials", "3", "--hidden", "32", "64", "--steps", "4", "8", "--measure", "2",
           "--measure-samples", "6", "--calibrate-models", "6", "--calibrate-samples", "6",
           *TINY]
    env = {**os.environ, "EDGESNN_DATA": DATA}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=560)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "held-out error" in proc.stdout and "prediction error" in proc.stdout, proc.stdout
    r = json.loads((out / "tune.json").read_text())
    cal = r["cost_model"]["calibration"]
    assert cal["models"] == 6 and cal["held_out"] == 6 * 2
    assert math.isfinite(cal["held_out_mape_pct"]) and cal["held_out_mape_pct"] < 25.0
    assert r["unit"] == "instructions" and len(r["trials"]) == 3
    front = [(t["golden_accuracy"], t["predicted_cost"]) for t in r["pareto"]]
    feasible = [(t["golden_accuracy"], t["predicted_cost"]) for t in r["trials"]
                if t["state"] == "COMPLETE" and t["feasible"]]
    assert front and all(not any(_dominates(q, p) for q in feasible) for p in front)
    for p in feasible:  # every feasible point off the front is dominated by a front point
        assert p in front or any(_dominates(q, p) for q in front)
    measured = [t for t in r["pareto"] if "measured_cost" in t]
    assert len(measured) == min(2, len(front))
    for t in measured:
        assert t["measured_cost"] > 0 and math.isfinite(t["error_pct"])
        assert abs(t["error_pct"] - 100 * (t["predicted_cost_same_samples"] - t["measured_cost"])
                   / t["measured_cost"]) < 1e-9
    assert r["measured_error"]["candidates"] == len(measured)
    png = (out / "pareto.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert json.loads((out / "costmodel.json").read_text())["coef"] == r["cost_model"]["coef"]
