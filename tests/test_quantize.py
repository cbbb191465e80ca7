"""PTQ: scales, integer thresholds and leaks, calibration, and what the format cannot express."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from edgesnn.compress.quantize import METHODS, calibrate, choose_scale, extract, quantize
from edgesnn.export.base import ExportError
from edgesnn.graph.esg import decode, encode
from edgesnn.graph.golden import simulate
from edgesnn.graph.ir import Q16_ONE, EncoderKind, Storage
from edgesnn.snn import SNNConfig, SpikingMLP

torch.set_num_threads(1)


def _model(**kw) -> SpikingMLP:
    torch.manual_seed(0)
    cfg = dict(input_size=784, hidden=[16], n_classes=10, steps=6)
    cfg.update(kw)
    return SpikingMLP(SNNConfig(**cfg))


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("per_channel", [True, False])
def test_maxabs_scale_maps_largest_weight_to_qmax(bits: int, per_channel: bool) -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.1, (12, 30)) * rng.uniform(0.1, 3, (12, 1))
    scale = choose_scale(w, bits, per_channel, "maxabs")
    qmax = (1 << (bits - 1)) - 1
    assert scale.shape == ((12,) if per_channel else (1,))
    q = np.round(w / (scale[:, None] if per_channel else scale))
    assert np.abs(q).max() == qmax
    if per_channel:
        assert np.all(np.abs(q).max(axis=1) == qmax)
    for method in METHODS:  # every method clips at or below max |w|
        s = choose_scale(w, bits, per_channel, method)
        assert np.all(s <= scale + 1e-12) and np.all(s > 0)
    with pytest.raises(ValueError, match="accepted"):
        choose_scale(w, bits, per_channel, "median")


def test_mse_scale_has_no_larger_error_than_maxabs() -> None:
    w = np.random.default_rng(1).standard_t(2, (8, 400))  # heavy tails: clipping pays off
    def err(s: np.ndarray) -> float:
        q = np.clip(np.round(w / s[:, None]), -7, 7) * s[:, None]
        return float(((q - w) ** 2).sum())
    assert err(choose_scale(w, 4, True, "mse")) <= err(choose_scale(w, 4, True, "maxabs"))


@pytest.mark.parametrize("encoder", ["rate", "direct"])
def test_thresholds_leaks_and_weights_follow_the_scales(encoder: str) -> None:
    model = _model(encoder=encoder, beta=0.83, threshold=1.3)
    net = extract(model)
    q = quantize(net, weight_bits=8, per_channel=True)
    graph = q.to_graph()
    assert graph.encoder.kind == EncoderKind[encoder.upper()]
    assert graph.steps == 6 and graph.encoder.seed == model.config.encoder_seed
    for idx, layer in enumerate(graph.layers):
        scale = q.specs[idx].scale
        w = model.fcs[idx].weight.detach().double().numpy()
        assert np.array_equal(layer.weights.T, np.round(w / scale[:, None]).astype(np.int64))
        gain = 255.0 if (encoder == "direct" and idx == 0) else 1.0
        assert np.array_equal(layer.threshold_full(), np.round(1.3 * gain / scale))
        assert np.all(layer.leak_full() == round(0.83 * Q16_ONE))
    # per-layer scales keep one threshold per layer
    single = quantize(net, weight_bits=4, per_channel=False).to_graph()
    assert all(layer.threshold.shape == (1,) for layer in single.layers)
    assert all(layer.weight_bits == 4 for layer in single.layers)


def test_if_neuron_and_zero_reset_are_copied() -> None:
    g = quantize(extract(_model(neuron="if", beta=1.0, reset="zero"))).to_graph()
    assert all(int(layer.neuron) == 1 and int(layer.reset) == 1 for layer in g.layers)
    assert all(np.all(layer.leak == Q16_ONE) for layer in g.layers)


def test_graph_survives_esg_round_trip_and_sparse_storage_when_smaller() -> None:
    q = quantize(extract(_model()), weight_bits=4)
    with torch.no_grad():
        q.mask0.copy_((torch.rand_like(q.mask0) < 0.1).double())
    q.apply_masks()
    graph = q.to_graph()
    assert graph.layers[0].storage == Storage.SPARSE
    assert graph.layers[1].storage == Storage.DENSE  # 16x10 dense int4 is smaller than CSR
    back = decode(encode(graph))
    for a, b in zip(back.layers, graph.layers, strict=True):
        assert np.array_equal(a.weights, b.weights) and a.storage == b.storage
    px = np.random.default_rng(0).integers(0, 256, (8, 784), dtype=np.uint8)
    assert np.array_equal(simulate(back, px).pred, simulate(graph, px).pred)


def _fake(**over) -> SimpleNamespace:
    fc = SimpleNamespace(weight=torch.ones(3, 4), bias=None)
    fc2 = SimpleNamespace(weight=torch.ones(2, 3), bias=None)
    cfg = SimpleNamespace(input_size=4, encoder="rate", neuron="lif", reset="subtract",
                          encoder_seed=1, steps=5, hidden=[3], n_classes=2)
    params = {"beta": [torch.tensor([0.9]), torch.tensor([0.9])],
              "theta": [torch.tensor([1.0]), torch.tensor([1.0])], "fcs": [fc, fc2],
              "config": cfg}
    params.update(over)
    return SimpleNamespace(config=params["config"], fcs=params["fcs"],
                           beta=lambda i: params["beta"][i], threshold=lambda i: params["theta"][i])


@pytest.mark.parametrize("change,match", [
    ({"fcs": [SimpleNamespace(weight=torch.ones(3, 4), bias=torch.full((3,), float("nan"))),
              SimpleNamespace(weight=torch.ones(2, 3), bias=None)]}, "layer 0.*bias.*NaN"),
    ({"theta": [torch.tensor([1.0]), torch.tensor([-0.5, 1.0])]}, "layer 1.*negative threshold"),
    ({"beta": [torch.tensor([1.2]), torch.tensor([0.9])]}, "layer 0.*beta outside"),
    ({"beta": [torch.tensor([0.9, 0.9]), torch.tensor([0.9])]}, "layer 0.*beta has 2 values"),
    ({"fcs": [SimpleNamespace(weight=torch.ones(70000, 4), bias=None),
              SimpleNamespace(weight=torch.ones(2, 70000), bias=None)]}, "layer 0.*65535"),
    ({"fcs": [SimpleNamespace(weight=torch.ones(3, 4), bias=None),
              SimpleNamespace(weight=torch.ones(300, 3), bias=None)]}, "300 classes"),
    ({"fcs": [SimpleNamespace(weight=torch.ones(3, 5), bias=None)]}, "layer 0.*chain"),
])
def test_unexpressible_models_raise_export_error(change: dict, match: str) -> None:
    extract(_fake())  # the unchanged fake is fine
    with pytest.raises(ExportError, match=match):
        extract(_fake(**change))


def test_bad_config_values_raise() -> None:
    cfg = SimpleNamespace(input_size=4, encoder="poisson", neuron="lif", reset="subtract",
                          encoder_seed=1, steps=5)
    with pytest.raises(ExportError, match="encoder 'poisson'"):
        extract(_fake(config=cfg))
    with pytest.raises(ValueError, match="weight_bits"):
        quantize(extract(_fake()), weight_bits=2)
    huge = extract(_fake(theta=[torch.tensor([1e12]), torch.tensor([1.0])]))
    with pytest.raises(ExportError, match="layer 0.*exceeds int32"):
        quantize(huge)


def test_calibration_on_trained_model_is_close_to_float(tiny_run, mnist_data_dir) -> None:
    from edgesnn.compress.pipeline import float_predict
    from edgesnn.data import load_dataset
    from edgesnn.snn import load

    model, _ = load(tiny_run)
    train = load_dataset("mnist", "train", mnist_data_dir, limit=400)
    test = load_dataset("mnist", "test", mnist_data_dir, limit=600)
    float_acc = float(np.mean(float_predict(model, test.images) == test.labels))
    for bits, floor_pp in ((8, 1.5), (4, 4.0)):
        q, report = calibrate(extract(model), train.images, train.labels, weight_bits=bits)
        maxabs = [t["accuracy"] for t in report["trials"]
                  if t["layer"] == 0 and t["method"] == "maxabs"][0]
        assert report["calibration_accuracy"] >= maxabs
        assert len(report["methods"]) == 2 and set(report["methods"]) <= set(METHODS)
        acc = float(np.mean(simulate(q.to_graph(), test.images).pred == test.labels))
        assert acc >= float_acc - floor_pp / 100, (bits, acc, float_acc)


def test_bias_quantizes_in_the_layer_units_or_says_by_how_much_it_does_not_fit() -> None:
    fc = SimpleNamespace(weight=torch.ones(3, 4), bias=torch.tensor([0.5, -0.25, 0.0]))
    fc2 = SimpleNamespace(weight=torch.ones(2, 3), bias=None)
    net = extract(_fake(fcs=[fc, fc2]))
    graph = quantize(net, weight_bits=8, per_channel=False).to_graph()
    scale = 1.0 / 127  # max |w| = 1 maps to 127
    assert graph.layers[0].bias.tolist() == [round(0.5 / scale), round(-0.25 / scale), 0]
    assert graph.layers[1].bias is None
    fc.bias = torch.tensor([1e6, 0.0, 0.0])
    with pytest.raises(ExportError, match=r"layer 0 \(fc0\): quantized bias 127000000 exceeds "
                                          r"the format's \+-8388607 by 15\.14x"):
        quantize(extract(_fake(fcs=[fc, fc2])))
