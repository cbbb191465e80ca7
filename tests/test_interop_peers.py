"""Models trained in the peers themselves, exported with the peers' own NIR exporters,
imported with ``edgesnn import`` and run side by side with the peer's own code
(``benchmarks/interop.py``, here on 500 MNIST test images; the benchmark runs all 10,000).

Each peer network is 784 -> 64 -> 10 with ``nn.Linear`` biases, trained in the peer for one
pass over 3,000 MNIST training images (T = 8, edgesnn's deterministic rate encoder, so both
sides see the same input spikes). Held here:

* per-class output spike counts identical on >= 99 % of the images,
* predictions identical on >= 99.8 %: the imported run keeps the peer's readout (argmax of
  the counts, ties to the lowest index, as ``torch.argmax``; ``.esg`` readout 1),
* the int8 golden simulator's accuracy (PTQ of the imported run) within 1 pp of the peer's
  float accuracy,
* the C runtime (host build) equal to the golden simulator on that int8 graph, bit for bit.

Rules (SPEC.md 3.2): snnTorch ``Leaky`` subtract = ``subtract_delayed``, zero = ``zero``,
none = ``none``; SpikingJelly ``LIFNode``/``IFNode`` (hard reset to 0) = ``zero`` with fire
``ge``; Norse ``LIFBoxCell`` = ``zero``, imported at dt = dt_norse**2 (Norse 1.1 writes
tau = dt * tau_mem, exporters/nir/MAPPING.md); Norse ``LIFCell`` = ``cuba_lif`` with ``zero``,
at dt_norse**2 and ``cuba_input="jump"`` (its synaptic current jumps by its input, which its
exporter leaves as ``w_in = 1``). Below: what Norse's ``LIFCell`` export needs and refuses,
and a plain nirtorch 2.6 ``torch_to_nir`` graph (LIF, CubaLIF) against the NIR step.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
NEEDS = {"snntorch": ("snntorch", "nirtorch"), "spikingjelly": ("spikingjelly", "loguru"),
         "norse": ("norse",)}


def _bench() -> ModuleType:  # benchmarks/ is not a package
    spec = importlib.util.spec_from_file_location("bench_interop",
                                                  ROOT / "benchmarks" / "interop.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  # dataclasses look it up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
@pytest.mark.parametrize("key", ["snntorch-subtract", "snntorch-zero", "snntorch-none",
                                 "snntorch-synaptic-subtract", "snntorch-synaptic-none",
                                 "spikingjelly-lif", "spikingjelly-if", "norse-lifbox",
                                 "norse-lifcell"])
def test_peer_model_runs_unchanged(key: str, mnist_data_dir: Path, tmp_path: Path,
                                   record_property) -> None:
    pytest.importorskip("nir")
    for module in NEEDS[key.split("-")[0]]:
        pytest.importorskip(module)
    bench = _bench()
    r = bench.compare(bench.PEERS[key](), mnist_data_dir, tmp_path, train=3000, test=500)
    for name, value in r.items():
        record_property(f"{key}_{name}", value)
    print(f"{key}: {r}")
    assert r["bias"] and r["readout"] == "count"
    assert r["peer_accuracy"] > 0.7, f"{key} did not learn"
    assert r["counts_identical"] >= 0.99 and r["predictions_identical"] >= 0.998
    assert abs(r["int8_golden_accuracy"] - r["peer_accuracy"]) <= 0.01
    assert r["c_equals_golden_100"]


def _counts(run: Path, pixels: np.ndarray) -> np.ndarray:
    from edgesnn.snn.checkpoint import load

    model, _ = load(run)
    with torch.no_grad():
        return model.forward_pixels(torch.from_numpy(pixels)).counts.numpy()


def _norse_lifcell_file(tmp_path: Path, **p: float) -> tuple[ModuleType, object, Path]:
    """An untrained Norse 784-64-10 LIFCell net (weights scaled up so that it spikes; ``p``
    overrides LIFParameters), exported with Norse's to_nir as the peer benchmark does."""
    pytest.importorskip("nir")
    pytest.importorskip("norse")
    import nir

    bench = _bench()
    peer = bench.norse_lifcell()
    if p:
        for cell in (peer.net[1], peer.net[3]):
            cell.p = cell.p._replace(**{k: torch.as_tensor(v) for k, v in p.items()})
    with torch.no_grad():
        for lin in (peer.net[0], peer.net[2]):
            lin.weight.mul_(8.0)
    f = tmp_path / "norse.nir"
    nir.write(str(f), peer.export())
    return bench, peer, f


def test_norse_lifcell_synaptic_input_is_a_jump(mnist_data_dir: Path, tmp_path: Path,
                                                  capsys) -> None:
    """Norse's LIFCell adds its input to the synaptic current unscaled (i = i + W z + b) and
    its to_nir writes w_in = 1: read as NIR's Euler step (I += dt/tau_syn w_in S) the file
    means a 5x weaker input; `edgesnn import --cuba-input jump` reproduces Norse, "euler"
    does not."""
    import json

    from edgesnn.cli import main
    from edgesnn.data import load_dataset

    bench, peer, f = _norse_lifcell_file(tmp_path)
    te = load_dataset("mnist", "test", mnist_data_dir, limit=200)
    with torch.no_grad():
        ref = bench._peer_counts(peer, te.images).numpy()
    assert ref.sum() > 200, "the untrained Norse net hardly spikes: the check would be empty"
    same = {}
    for how in ("jump", "euler"):
        run = tmp_path / how
        assert main(["import", str(f), "--out", str(run), "--dt", "1e-6", "--reset", "zero",
                     "--steps", str(bench.STEPS), "--encoder", "rate", "--encoder-seed",
                     str(bench.SEED), "--cuba-input", how, "--json"]) == 0
        s = json.loads(capsys.readouterr().out)
        assert s["neuron"] == "cuba_lif" and s["cuba_input"] == how
        same[how] = float(np.mean(np.all(_counts(run, te.images) == ref, axis=1)))
    assert same["jump"] >= 0.99 and same["euler"] < 0.5, same


def test_norse_lifcell_v_leak_refused(tmp_path: Path, capsys) -> None:
    """A Norse LIFCell resting away from 0 (v_leak != 0; Norse's exporter writes v_leak) is
    refused by name, exit 2, nothing written."""
    from edgesnn.cli import main

    _, _, f = _norse_lifcell_file(tmp_path, v_leak=-0.5)
    out = tmp_path / "run"
    assert main(["import", str(f), "--out", str(out), "--dt", "1e-6"]) == 2
    err = capsys.readouterr().err
    assert "node '1'" in err and "v_leak" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_cuba_input_option_checked() -> None:
    pytest.importorskip("nir")
    from edgesnn.interop.nir_graph import InteropError, from_nir, to_nir
    from edgesnn.interop.params import FloatLayer, FloatSNN

    snn = FloatSNN(layers=[FloatLayer(weight=np.ones((2, 3), np.float32),
                                      beta=np.full(1, 0.5, np.float32),
                                      threshold=np.ones(1, np.float32),
                                      alpha=np.full(1, 0.5, np.float32))],
                   steps=4, encoder="rate", encoder_seed=1, neuron="cuba_lif", reset="zero")
    with pytest.raises(InteropError, match="cuba_input='delta'; accepted: euler, jump"):
        from_nir(to_nir(snn), cuba_input="delta")


@pytest.mark.parametrize("kind", ["LIF", "CubaLIF"])
def test_nirtorch_graph_imports(kind: str, mnist_data_dir: Path, tmp_path: Path) -> None:
    """nirtorch 2.6's own torch_to_nir (a plain torch module, the user's module map) writes
    Input/Affine/kind/Output nodes named '_0', '_1', ...; imported, edgesnn's counts equal the
    module's own forward pass, which computes NIR's forward-Euler step at dt = 1e-4 (the
    import's default) with non-unit r and w_in."""
    pytest.importorskip("nir")
    nirtorch = pytest.importorskip("nirtorch")
    import nir

    from edgesnn.data import load_dataset
    from edgesnn.data.encoders import encode
    from edgesnn.interop.importers import import_file

    dt = 1e-4

    class Neuron(torch.nn.Module):
        """NIR's LIF / CubaLIF, one forward-Euler step of length dt, reset to 0."""

        def __init__(self, n: int) -> None:
            super().__init__()
            self.n, self.tau_syn, self.tau_mem, self.r, self.w_in = n, 5e-4, 1e-3, 2.0, 3.0

        def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
                    = None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
            syn, v = state if state is not None else (torch.zeros_like(x), torch.zeros_like(x))
            if kind == "CubaLIF":
                syn = syn + dt / self.tau_syn * (-syn + self.w_in * x)
                x = syn
            v = v + dt / self.tau_mem * (-v + self.r * x)
            z = (v > 1.0).float()
            return z, (syn, v * (1.0 - z))

        def to_nir(self) -> object:
            n = self.n
            common = {"r": np.full(n, self.r), "v_leak": np.zeros(n),
                      "v_threshold": np.ones(n), "v_reset": np.zeros(n)}
            if kind == "LIF":
                return nir.LIF(tau=np.full(n, self.tau_mem), **common)
            return nir.CubaLIF(tau_syn=np.full(n, self.tau_syn), tau_mem=np.full(n, self.tau_mem),
                               w_in=np.full(n, self.w_in), **common)

    torch.manual_seed(7)
    layers = [torch.nn.Linear(784, 32), Neuron(32), torch.nn.Linear(32, 10), Neuron(10)]
    std0, std1 = (0.1, 1.0) if kind == "CubaLIF" else (0.2, 4.0)  # ~0.6 hidden, ~1.2 output
    with torch.no_grad():  # spikes per neuron and image: most images' counts differ
        for lin, std, mean in ((layers[0], std0, 0.0), (layers[2], std1, 0.5)):
            lin.weight.normal_(mean, std)
            lin.bias.uniform_(0.0, 0.1)
    module = torch.nn.Sequential(*layers)
    graph = nirtorch.torch_to_nir(module, {Neuron: Neuron.to_nir}, stateful_modules={Neuron})
    assert [type(graph.nodes[b]).__name__ for _, b in sorted(graph.edges)].count(kind) == 2
    f = tmp_path / "nirtorch.nir"
    nir.write(str(f), graph)
    s = import_file(f, tmp_path / "run", steps=8, encoder="rate", encoder_seed=11)
    assert s["neuron"] == ("cuba_lif" if kind == "CubaLIF" else "lif") and s["dt"] == dt

    te = load_dataset("mnist", "test", mnist_data_dir, limit=200)
    x = encode(torch.from_numpy(te.images), "rate", 8, 11)
    states: list = [None, None]
    ref = torch.zeros(len(te.images), 10)
    with torch.no_grad():
        for t in range(8):
            h = x[t]
            for i in range(2):
                h, states[i] = layers[2 * i + 1](layers[2 * i](h), states[i])
            ref += h
    ref_np = ref.numpy()
    assert ref_np.sum() > 200, "the nirtorch net hardly spikes: the check would be empty"
    assert np.mean(np.all(_counts(tmp_path / "run", te.images) == ref_np, axis=1)) >= 0.99
