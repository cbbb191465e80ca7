"""The ANN baseline's training, pruning and int8 quantization (edgesnn.compress.ann): the
integer network follows the float one, QAT runs the integer arithmetic, pruning keeps what
it is asked to keep, and make_baseline's files read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgesnn.compress import ann as cann
from edgesnn.data import Dataset, load_dataset
from edgesnn.graph import ann as gann
from edgesnn.snn.ann import AnnTrainError, AnnTrainOptions, ReluMLP, ann_predict, train_ann


@pytest.fixture(scope="module")
def small(mnist_data_dir: Path) -> tuple[Dataset, Dataset]:
    train = load_dataset("mnist", "train", data_dir=mnist_data_dir, limit=3000)
    test = load_dataset("mnist", "test", data_dir=mnist_data_dir, limit=500)
    return train, test


@pytest.fixture(scope="module")
def trained(small: tuple[Dataset, Dataset]) -> ReluMLP:
    torch.manual_seed(0)
    model = ReluMLP([784, 48, 10])
    train_ann(model, small[0], AnnTrainOptions(epochs=2, lr=3e-3, batch_size=50))
    return model


def test_ptq_follows_float(trained: ReluMLP, small: tuple[Dataset, Dataset]) -> None:
    train, test = small
    fl = ann_predict(trained, test.images)
    assert np.mean(fl == test.labels) > 0.83
    scales = cann.calibrate(trained, train.images[:500])
    graph = cann.quantize(trained, scales)
    out = gann.infer(graph, test.images)
    assert np.mean(out.pred == fl) >= 0.97, "int8 PTQ predictions drift from the float model"
    # the integer logits are the float logits in units of s_in * s_w of the last layer
    s_w = float(cann.weight_scale(trained.fcs[1].weight))
    with torch.no_grad():
        logits = trained(torch.from_numpy(test.images[:50])).numpy()
    approx = out.logits[:50] * (scales[0] * s_w)
    assert np.abs(approx - logits).max() < 0.05 * np.abs(logits).max()
    # hidden activations use the uint8 range without saturating most of it
    h = out.hidden[0]
    assert h.max() >= 128 and np.mean(h == 255) < 0.01


def test_qat_forward_matches_integer(trained: ReluMLP, small: tuple[Dataset, Dataset]) -> None:
    """The fake-quantized forward and the integer twin agree on almost every prediction (they
    differ only by the fixed-point multiplier's rounding)."""
    train, test = small
    scales = cann.calibrate(trained, train.images[:500])
    qat = cann.QatMLP(trained, scales)
    fake = ann_predict(qat, test.images)
    integer = gann.infer(cann.quantize(trained, scales), test.images).pred
    assert np.mean(fake == integer) >= 0.99


def test_magnitude_masks_keep_fraction(trained: ReluMLP) -> None:
    masks = cann.magnitude_masks(trained, 0.1)
    for fc, m in zip(trained.fcs, masks, strict=True):
        assert abs(float(m.mean()) - 0.1) < 0.01
        kept = fc.weight.detach().abs()[m.bool()]
        dropped = fc.weight.detach().abs()[~m.bool()]
        assert float(kept.min()) >= float(dropped.max())
    with pytest.raises(cann.AnnQuantError, match="keep"):
        cann.magnitude_masks(trained, 0.0)


def test_make_baseline_pruned_sparse(tmp_path: Path, small: tuple[Dataset, Dataset]) -> None:
    train, test = small
    opts = cann.AnnBaselineOptions(hidden=(32,), train=AnnTrainOptions(epochs=1, lr=3e-3,
                                                                       batch_size=50),
                                   keep=0.2, prune_epochs=2, qat_epochs=1, storage="sparse",
                                   calib_limit=300)
    graph, stats = cann.make_baseline(train, test, opts, tmp_path)
    assert stats["quantization"] == "qat" and stats["golden_accuracy"] > 0.6
    assert stats["golden_accuracy"] >= stats["pruned_float_accuracy"] - 0.03
    assert all(abs(d - 0.2) < 1e-3 for d in stats["weight_density"])  # k = round(keep * n)
    back, meta = cann.load_baseline(tmp_path)
    assert meta["golden_accuracy"] == stats["golden_accuracy"]
    assert [la.storage for la in back.layers] == ["sparse", "sparse"]
    for a, b in zip(graph.layers, back.layers, strict=True):
        assert np.array_equal(a.weights, b.weights)
    acc = float(np.mean(gann.infer(back, test.images).pred == test.labels))
    assert acc == stats["golden_accuracy"]
    assert stats["mean_macs"] < 0.2 * graph.macs_dense()


def test_options_are_checked() -> None:
    with pytest.raises(AnnTrainError, match="epochs"):
        AnnTrainOptions(epochs=0).validate()
    with pytest.raises(cann.AnnQuantError, match="storage"):
        cann.AnnBaselineOptions(storage="csr").validate()
    with pytest.raises(AnnTrainError, match="sizes"):
        ReluMLP([784])
