"""Models trained in the peers themselves, exported with the peers' own NIR exporters,
imported with ``edgesnn import`` and run side by side with the peer's own code.

Each peer network is 784 -> 64 -> 10 with ``nn.Linear`` biases, trained in the peer for one
pass over 2,000 MNIST training images (T = 8, edgesnn's deterministic rate encoder, so both
sides see the same input spikes), then compared on 500 test images:

* per-class output spike counts identical (the share of images where every count matches),
* predictions identical: the imported run keeps the peer's readout (argmax of the counts,
  ties to the lowest index, as ``torch.argmax``; ``.esg`` readout 1),
* the int8 golden simulator's accuracy (PTQ of the imported run) near the peer's float one,
* the C runtime (host build) equal to the golden simulator on that int8 graph, bit for bit.

Rules (SPEC.md 3.2): snnTorch ``Leaky`` subtract = ``subtract_delayed``, zero = ``zero``,
none = ``none``; SpikingJelly ``LIFNode``/``IFNode`` (hard reset to 0) = ``zero`` with fire
``ge``; Norse ``LIFBoxCell`` = ``zero``, imported at dt = dt_norse**2 (Norse 1.1 writes
tau = dt * tau_mem, exporters/nir/MAPPING.md).
"""

from __future__ import annotations

import json
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from edgesnn.build import build_check_tool
from edgesnn.cli import main
from edgesnn.compress.quantize import extract, quantize
from edgesnn.data import load_dataset
from edgesnn.data.encoders import encode
from edgesnn.graph.esg import encode as encode_esg
from edgesnn.graph.golden import simulate
from edgesnn.graph.ir import Readout
from edgesnn.snn.checkpoint import load

nir = pytest.importorskip("nir")

STEPS, SEED, HIDDEN = 8, 0x1234ABCD, 64
TRAIN, TEST = 3000, 500

Step = Callable[[torch.Tensor], torch.Tensor]  # one time step: input [B, 784] -> spikes [B, 10]


def _train_and_count(net: torch.nn.Module, reset_state: Callable[[], None], step: Step,
                     data_dir: Path, lr: float = 3e-3
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train ``net`` in its own library; return (counts [TEST, 10], test pixels, labels)."""
    train = load_dataset("mnist", "train", data_dir, limit=TRAIN)
    test = load_dataset("mnist", "test", data_dir, limit=TEST)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    images, targets = torch.from_numpy(train.images), torch.from_numpy(train.labels).long()

    def run(pixels: torch.Tensor) -> torch.Tensor:
        x = encode(pixels, "rate", STEPS, SEED)
        reset_state()
        counts = torch.zeros(pixels.shape[0], 10)
        for t in range(STEPS):
            counts = counts + step(x[t])
        return counts

    torch.manual_seed(0)
    for i in range(0, TRAIN, 50):
        loss = torch.nn.functional.cross_entropy(run(images[i:i + 50]), targets[i:i + 50])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        counts = run(torch.from_numpy(test.images)).numpy()
    return counts, test.images, test.labels


def _import_and_compare(graph: object, tmp_path: Path, peer_counts: np.ndarray,
                        pixels: np.ndarray, labels: np.ndarray, options: list[str],
                        record_property: Callable[[str, object], None], name: str) -> None:
    f = tmp_path / f"{name}.nir"
    nir.write(str(f), graph)
    out = tmp_path / "run"
    assert main(["import", str(f), "--out", str(out), "--steps", str(STEPS), "--encoder", "rate",
                 "--encoder-seed", str(SEED), *options]) == 0
    model, _ = load(out)
    assert model.config.bias
    with torch.no_grad():
        res = model.forward_pixels(torch.from_numpy(pixels))
    counts = res.counts.numpy()
    same_counts = float(np.mean(np.all(counts == peer_counts, axis=1)))
    # the imported run keeps the peer's readout (argmax of the counts, lowest index on ties)
    assert model.config.readout == "count"
    same_pred = float(np.mean(res.prediction().numpy() == peer_counts.argmax(axis=1)))
    peer_acc = float(np.mean(peer_counts.argmax(axis=1) == labels))
    graph_int = quantize(extract(model), weight_bits=8, per_channel=True).to_graph()
    assert graph_int.readout == Readout.COUNT
    ref = simulate(graph_int, pixels)
    int_acc = float(np.mean(ref.pred == labels))
    # the C runtime (host build) runs the peer's model bit for bit as the golden simulator
    esg_path, px_path = tmp_path / "model.esg", tmp_path / "px.bin"
    esg_path.write_bytes(encode_esg(graph_int))
    px_path.write_bytes(np.ascontiguousarray(pixels[:100]).tobytes())
    proc = subprocess.run([str(build_check_tool(tmp_path / "tool")), "infer", str(esg_path),
                           str(px_path)], capture_output=True, text=True, timeout=120,
                          check=True)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    for key in ("pred", "counts", "v_final", "spikes", "ops"):
        assert np.array_equal(np.array([r[key] for r in rows]), getattr(ref, key)[:100]), key
    for key, value in (("counts", same_counts), ("predictions", same_pred),
                       ("peer_accuracy", peer_acc), ("int8_accuracy", int_acc)):
        record_property(f"{name}_{key}", value)
    print(f"{name}: counts identical {same_counts:.4f}, predictions identical {same_pred:.4f}, "
          f"peer float accuracy {peer_acc:.4f}, edgesnn int8 golden accuracy {int_acc:.4f}")
    assert peer_acc > 0.7, f"{name} did not learn ({peer_acc})"
    assert same_pred >= 0.998 and same_counts >= 0.99
    assert abs(int_acc - peer_acc) <= 0.01  # PTQ of a one-pass model, 500 images


@pytest.mark.parametrize(("mechanism", "rule"), [("subtract", "subtract_delayed"),
                                                 ("zero", "zero"), ("none", "none")])
def test_snntorch_leaky(mechanism: str, rule: str, mnist_data_dir: Path, tmp_path: Path,
                        record_property) -> None:
    snn = pytest.importorskip("snntorch")
    pytest.importorskip("nirtorch")
    from snntorch import utils as sutils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(1)
    kw = {"reset_mechanism": mechanism, "init_hidden": True}  # reset_delay: the default
    net = torch.nn.Sequential(
        torch.nn.Linear(784, HIDDEN),
        snn.Leaky(beta=torch.full((HIDDEN,), 0.9), threshold=torch.ones(HIDDEN), **kw),
        torch.nn.Linear(HIDDEN, 10),
        snn.Leaky(beta=torch.full((10,), 0.8), threshold=torch.ones(10), output=True, **kw))
    counts, pixels, labels = _train_and_count(net, lambda: sutils.reset(net),
                                              lambda x: net(x)[0], mnist_data_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = export_to_nir(net, torch.zeros(1, 784), ignore_dims=[0])
    _import_and_compare(graph, tmp_path, counts, pixels, labels, ["--reset", rule],
                        record_property, f"snntorch_{mechanism}")


@pytest.mark.parametrize("kind", ["LIFNode", "IFNode"])
def test_spikingjelly_nodes(kind: str, mnist_data_dir: Path, tmp_path: Path,
                            record_property) -> None:
    pytest.importorskip("spikingjelly")
    pytest.importorskip("loguru", reason="spikingjelly 2.0 imports loguru")
    from spikingjelly.activation_based import functional, neuron
    from spikingjelly.activation_based.nir_exchange.to_nir import export_to_nir

    torch.manual_seed(2)

    def node() -> torch.nn.Module:  # hard reset to 0 (their NIR exporter refuses soft reset)
        if kind == "IFNode":
            return neuron.IFNode(v_reset=0.0)
        return neuron.LIFNode(tau=2.0, decay_input=True, v_reset=0.0)

    net = torch.nn.Sequential(torch.nn.Linear(784, HIDDEN), node(),
                              torch.nn.Linear(HIDDEN, 10), node())
    counts, pixels, labels = _train_and_count(net, lambda: functional.reset_net(net), net,
                                              mnist_data_dir)
    graph = export_to_nir(net, torch.zeros(1, 784), dt=1e-4)
    _import_and_compare(graph, tmp_path, counts, pixels, labels,
                        ["--reset", "zero", "--fire", "ge", "--dt", "1e-4"], record_property,
                        f"spikingjelly_{kind}")


def test_norse_lifbox(mnist_data_dir: Path, tmp_path: Path, record_property) -> None:
    nt = pytest.importorskip("norse.torch")
    from norse.torch.utils.export_nir import to_nir

    torch.manual_seed(3)
    dt = 1e-3
    net = nt.SequentialState(torch.nn.Linear(784, HIDDEN), nt.LIFBoxCell(dt=dt),
                             torch.nn.Linear(HIDDEN, 10), nt.LIFBoxCell(dt=dt))
    state: list[object] = [None]

    def reset() -> None:
        state[0] = None

    def step(x: torch.Tensor) -> torch.Tensor:
        z, state[0] = net(x, state[0])
        return z

    # Norse scales the input by dt / tau_mem = 0.1: a larger step size trains it as fast
    counts, pixels, labels = _train_and_count(net, reset, step, mnist_data_dir, lr=2e-2)
    graph = to_nir(net, torch.zeros(1, 784), dt=dt)
    # Norse 1.1 writes its LIF parameters as 0-dim arrays, which nir.write (h5py) cannot store:
    # give them the layer's shape first, as a Norse user has to before saving the file
    for name, node in graph.nodes.items():
        if isinstance(node, nir.LIF):
            (src,) = [a for a, b in graph.edges if b == name]
            n = np.asarray(graph.nodes[src].weight).shape[0]
            for field in ("tau", "r", "v_leak", "v_threshold", "v_reset"):
                value = np.asarray(getattr(node, field), dtype=np.float32)
                setattr(node, field, np.full(n, float(value)) if value.ndim == 0 else value)
    _import_and_compare(graph, tmp_path, counts, pixels, labels,
                        ["--reset", "zero", "--dt", repr(dt * dt)], record_property,
                        "norse_lifbox")
