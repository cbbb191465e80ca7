"""ANN -> SNN conversion: normalisation, IF/subtract semantics, accuracy close to the ANN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgesnn.data import load_dataset
from edgesnn.snn import SNNConfig, load
from edgesnn.snn.convert import (
    ConvertOptions,
    activation_scales,
    convert_and_save,
    relu_mlp,
    to_snn,
)
from edgesnn.snn.train import TrainError, TrainOptions
from tests.fixtures_train import one_thread


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory, mnist_data_dir: Path) -> tuple:
    out = tmp_path_factory.mktemp("convert")
    with one_thread():
        metrics = convert_and_save(
            SNNConfig(hidden=[64], steps=25),
            TrainOptions(train_limit=6000, test_limit=1000, seed=0, progress=False),
            ConvertOptions(epochs=2, steps_sweep=(3, 25, 50)), out, mnist_data_dir)
    return out, metrics


def test_converted_run_is_close_to_the_ann(converted: tuple) -> None:
    out, metrics = converted
    assert metrics["ann_accuracy"] >= 0.85
    assert metrics["test_accuracy"] >= metrics["ann_accuracy"] - 0.03
    sweep = metrics["accuracy_vs_steps"]
    assert sweep["50"] >= sweep["3"]  # more steps, finer rate code
    assert json.loads((out / "train.json").read_text())["method"] == "convert"


def test_converted_model_is_if_subtract(converted: tuple) -> None:
    out, _ = converted
    model, meta = load(out)
    cfg = model.config
    assert (cfg.neuron, cfg.beta, cfg.reset, cfg.threshold) == ("if", 1.0, "subtract", 1.0)
    assert float(model.beta(0)) == 1.0
    assert meta["method"] == "convert" and len(meta["scales"]) == 2


def test_max_normalisation_bounds_activations(mnist_data_dir: Path) -> None:
    torch.manual_seed(0)
    ann = relu_mlp([784, 32, 10]).eval()
    images = load_dataset("mnist", "train", mnist_data_dir, 500).images
    scales = activation_scales(ann, images, "max")
    snn = to_snn(ann, SNNConfig(hidden=[32]), scales)
    x = torch.from_numpy(images).float() / 255.0
    with torch.no_grad():
        h = (x @ snn.fcs[0].weight.T).clamp_min(0)
        assert abs(float(h.max()) - 1.0) < 1e-5  # the normalised layer peaks at exactly 1
        o = h @ snn.fcs[1].weight.T
        assert abs(float(o.max()) - 1.0) < 1e-5
    p = activation_scales(ann, images, "percentile", 99.0)
    assert all(a <= b for a, b in zip(p, scales, strict=True))


def test_snn_rates_approximate_ann_activations(mnist_data_dir: Path) -> None:
    # an IF neuron with subtract reset driven by a constant current c in [0, 1) fires
    # floor(c*T) or so times in T steps: with direct input the hidden rates track the ANN
    torch.manual_seed(1)
    ann = relu_mlp([784, 16, 10]).eval()
    images = load_dataset("mnist", "test", mnist_data_dir, 50).images
    snn = to_snn(ann, SNNConfig(hidden=[16], steps=200, encoder="direct"),
                 activation_scales(ann, images, "max"))
    with torch.no_grad():
        out = snn.forward_pixels(torch.from_numpy(images), record=True)
        rate = out.layer_spikes[0].mean(0).numpy()
        act = (torch.from_numpy(images).float() / 255.0 @ snn.fcs[0].weight.T).clamp_min(0)
    assert np.abs(rate - act.numpy()).max() <= 1.0 / 200 + 1e-6


def test_bad_options() -> None:
    with pytest.raises(TrainError, match="norm"):
        ConvertOptions(norm="mean").validate()


def test_cli_convert_json(tmp_path: Path, mnist_data_dir: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    from edgesnn.cli import main

    with one_thread():
        rc = main(["train", "--out", str(tmp_path / "run"), "--method", "convert", "--hidden",
                   "32", "--steps", "20", "--epochs", "2", "--train-limit", "2000",
                   "--test-limit", "200", "--data-dir", str(mnist_data_dir), "--json"])
    assert rc == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["method"] == "convert" and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert set(metrics["accuracy_vs_steps"]) == {"10", "25", "50", "100"}
    assert metrics["test_accuracy"] > 0.5
