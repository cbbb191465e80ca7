"""Pruning: exact target sparsity, masks that hold through QAT, structured neuron removal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgesnn.compress import prune
from edgesnn.compress.qat import IntegerSNN, finetune
from edgesnn.graph.golden import simulate
from edgesnn.graph.ir import Storage
from edgesnn.graph.synth import random_graph, random_pixels

torch.set_num_threads(1)


def _mnist_graph_model(seed: int = 0, bits: int = 8) -> IntegerSNN:
    graph = random_graph(seed, input_size=784, hidden=(32,), n_classes=10, steps=8,
                         weight_bits=bits)
    model = IntegerSNN.from_graph(graph)
    for idx in range(model.n_layers):
        model.mask(idx).fill_(1.0)
    return model


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.97])
def test_magnitude_masks_reach_the_target(scope: str, sparsity: float) -> None:
    rng = np.random.default_rng(0)
    mags = [np.abs(rng.normal(0, 1, (30, 50))), np.abs(rng.normal(0, 3, (10, 30)))]
    masks = prune.magnitude_masks(mags, sparsity, scope=scope)
    total = sum(m.size for m in masks)
    zeros = sum(int((m == 0).sum()) for m in masks)
    assert zeros == round(sparsity * total) or scope == "layer"
    if scope == "layer":
        for m in masks:
            assert int((m == 0).sum()) == round(sparsity * m.size)
    # the pruned weights are the smallest ones
    flat = np.concatenate([m.reshape(-1) for m in mags])
    kept = np.concatenate([k.reshape(-1) for k in masks]) > 0
    if scope == "global" and 0 < sparsity:
        assert flat[~kept].max() <= flat[kept].min()


def test_masks_only_grow_and_bad_arguments_raise() -> None:
    mags = [np.arange(20, dtype=float).reshape(4, 5)]
    first = prune.magnitude_masks(mags, 0.3)
    # a weight pruned before stays pruned even if it is large now
    grown = [mags[0][::-1].copy()]
    second = prune.magnitude_masks(grown, 0.5, keep=first)
    assert np.all(second[0][first[0] == 0] == 0)
    assert int((second[0] == 0).sum()) == 10
    with pytest.raises(ValueError, match="sparsity"):
        prune.magnitude_masks(mags, 1.0)
    with pytest.raises(ValueError, match="scope"):
        prune.magnitude_masks(mags, 0.5, scope="row")


def test_schedule_is_monotone_and_ends_at_target() -> None:
    s = prune.schedule(0.9, 4)
    assert len(s) == 4 and s[-1] == pytest.approx(0.9)
    assert all(a < b for a, b in zip(s, s[1:], strict=False))


@pytest.mark.parametrize("bits", [8, 4])
def test_pruned_weights_stay_zero_through_qat(mnist_data_dir, bits: int) -> None:
    from edgesnn.data import load_dataset

    data = load_dataset("mnist", "train", mnist_data_dir, limit=192)
    model = _mnist_graph_model(1, bits)
    history = prune.iterative_prune(
        model, 0.9, stages=2,
        finetune=lambda m, k: finetune(m, data.images, data.labels, epochs=1, lr=0.5,
                                       batch_size=64, progress=False, seed=k))
    assert [h["mask_sparsity"] for h in history][-1] == pytest.approx(0.9, abs=1e-4)
    assert history[0]["mask_sparsity"] < history[1]["mask_sparsity"]
    for idx in range(model.n_layers):
        pruned = model.mask(idx) == 0
        assert torch.all(model.latent[idx].detach()[pruned] == 0)
        assert np.all(model.int_weights(idx).T[pruned.numpy()] == 0)
    assert prune.weight_sparsity(model) >= prune.mask_sparsity(model) > 0.899
    # the exported graph stores the big layer sparse and still equals the module
    graph = model.to_graph()
    assert graph.layers[0].storage == Storage.SPARSE
    px = data.images[:32]
    ref = simulate(graph, px)
    with torch.no_grad():
        out = model(px)
    assert np.array_equal(out.prediction().numpy(), ref.pred)
    assert np.array_equal(out.counts.numpy().astype(np.int64), ref.counts)
    assert np.array_equal(out.v_final.numpy().astype(np.int64), ref.v_final)
    # sparse storage counts only the stored weights as ops
    dense = simulate(model.to_graph(sparse="never"), px)
    assert ref.ops[:, 0].sum() < 0.2 * dense.ops[:, 0].sum()


def test_structured_pruning_removes_silent_neurons_without_changing_outputs() -> None:
    graph = random_graph(3, input_size=40, hidden=(24, 12), n_classes=6, steps=10,
                         per_neuron=True)
    model = IntegerSNN.from_graph(graph)
    # silence some hidden neurons of both layers: a huge threshold never fires
    with torch.no_grad():
        model.theta0[[1, 5, 6, 20]] = 2**31 - 1
        model.theta1[[0, 11]] = 2**31 - 1
    px = random_pixels(9, 40, 40)
    before = simulate(model.to_graph(), px)
    smaller, report = prune.prune_neurons(model, px)
    assert [r["after"] for r in report["neurons"]] == [20, 10]
    assert [r["silent"] for r in report["neurons"]] == [4, 2]
    g2 = smaller.to_graph()
    assert [layer.n_out for layer in g2.layers] == [20, 10, 6]
    after = simulate(g2, px)
    assert np.array_equal(before.pred, after.pred)
    assert np.array_equal(before.counts, after.counts)
    assert np.array_equal(before.v_final, after.v_final)
    # dropping a fraction of the firing neurons too
    fewer, rep2 = prune.prune_neurons(model, px, drop_fraction=0.5)
    assert rep2["neurons"][0]["after"] == 10 and fewer.latent[1].shape[1] == 10
    with pytest.raises(ValueError, match="drop_fraction"):
        prune.prune_neurons(model, px, drop_fraction=1.0)
