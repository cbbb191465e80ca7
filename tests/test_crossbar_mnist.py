"""The crossbar target on a real compressed MNIST run (session fixture ``tiny_esg_run``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgesnn.crossbar.description import read_description
from edgesnn.crossbar.evaluate import evaluate
from edgesnn.crossbar.sim import Conditions, simulate
from edgesnn.data import load_dataset
from edgesnn.export.base import get_target
from edgesnn.graph.golden import simulate as golden


@pytest.fixture(scope="module")
def mnist_test(mnist_data_dir: Path):
    return load_dataset("mnist", "test", mnist_data_dir, limit=150)


def test_ideal_crossbar_equals_golden_on_mnist_run(tiny_esg_run: Path, tmp_path: Path,
                                                   mnist_data_dir: Path, mnist_test) -> None:
    out = tmp_path / "xb.json"
    get_target("crossbar").export(tiny_esg_run, out, device="rram-1t1r", levels=256,
                                  calib_samples=64, data_dir=str(mnist_data_dir))
    model = read_description(out)
    assert all(lm.exact for lm in model.mapping.layers)
    want = golden(model.graph, mnist_test.images)
    got = simulate(model.mapping, model.profile, model.spec, mnist_test.images,
                   Conditions(ideal=True))
    np.testing.assert_array_equal(got.pred, want.pred)
    np.testing.assert_array_equal(got.counts, want.counts)
    assert np.mean(want.pred == mnist_test.labels) > 0.7


def test_default_rram_profile_keeps_most_accuracy(tiny_esg_run: Path, tmp_path: Path,
                                                  mnist_data_dir: Path, mnist_test) -> None:
    out = tmp_path / "rram.json"
    get_target("crossbar").export(tiny_esg_run, out, device="rram-1t1r", calib_samples=64,
                                  data_dir=str(mnist_data_dir))
    model = read_description(out)
    px, y = mnist_test.images, mnist_test.labels
    gold = golden(model.graph, px).pred
    ideal = evaluate(model, px, y, cond=Conditions(ideal=True), golden_pred=gold)
    assert ideal["agreement_with_golden"] > 0.85  # 64 levels re-quantize int8 weights
    noisy = evaluate(model, px, y, trials=2, golden_pred=gold,
                     cond=Conditions(stuck_at_gmin=0.0, stuck_at_gmax=0.0))
    assert noisy["accuracy"] > ideal["golden_accuracy"] - 0.1
    assert noisy["energy_per_inference_pj"] > 0
    assert set(noisy["energy_breakdown"]) == {"cell_reads_pj", "adc_pj", "neuron_updates_pj",
                                              "digital_adds_pj"}
