"""Peer x rule x agreement: models trained in snnTorch 1.0, SpikingJelly 2.0 and Norse 1.1,
exported with the peers' own NIR exporters, imported with ``edgesnn import`` and run side by
side with the peer's own code on the same input spikes.

    .venv/bin/python benchmarks/interop.py [--train 3000] [--test 10000] [--json]

Per peer and rule: a 784-64-10 network with ``nn.Linear`` biases trained in the peer (one
pass over ``--train`` MNIST training images, T = 8, edgesnn's deterministic rate encoder on
both sides), then on ``--test`` MNIST test images: the share of images whose per-class spike
counts are all identical, whose predictions (the peer's readout, argmax of the counts,
lowest index on ties) are identical, the peer's float accuracy, the int8 golden accuracy of
the imported run (PTQ, per-channel) and whether the C runtime (host build) equals the golden
simulator on the first 100 images. ``tests/test_interop_peers.py`` runs the same code on 500
images and holds the targets (counts >= 99 %, predictions >= 99.8 %).

Measured (``--test 10000``, default training, 2 threads on the shared 2-core machine, 65 s
wall for all six):

peer (import options): counts identical / predictions identical / peer float accuracy /
edgesnn int8 golden accuracy; C = golden on all nine (the two Synaptic rows and the LIFCell
row measured alone).

* snnTorch Leaky subtract (--reset subtract_delayed): 100.00 / 100.00 / 85.29 / 85.26 %
* snnTorch Leaky zero (--reset zero): 100.00 / 100.00 / 85.39 / 85.47 %
* snnTorch Leaky none (--reset none): 100.00 / 100.00 / 80.19 / 80.29 %
* snnTorch Synaptic subtract (--reset subtract_delayed; CubaLIF): 100.00 / 100.00 / 87.00 /
  86.97 %
* snnTorch Synaptic none (--reset none; CubaLIF): 100.00 / 100.00 / 80.27 / 80.07 %
* SpikingJelly LIFNode (--reset zero --fire ge --dt 1e-4): 100.00 / 100.00 / 84.00 / 84.06 %
* SpikingJelly IFNode (--reset zero --fire ge --dt 1e-4): 100.00 / 100.00 / 85.55 / 85.55 %
* Norse LIFBoxCell (--reset zero --dt 1e-06): 100.00 / 100.00 / 80.86 / 80.78 %
* Norse LIFCell (--reset zero --dt 1e-06 --cuba-input jump; CubaLIF): 100.00 / 100.00 /
  86.11 / 86.16 % (measured alone)

How each peer is imported (exporters/nir/MAPPING.md): snnTorch ``Leaky`` subtract with its
default ``reset_delay=True`` -> ``--reset subtract_delayed``; zero -> ``zero``; none ->
``none``; ``Synaptic`` (CubaLIF, neuron ``cuba_lif``) subtract and none likewise;
SpikingJelly ``LIFNode``/``IFNode`` (hard reset to 0) -> ``--reset zero --fire ge``; Norse
``LIFBoxCell`` -> ``--reset zero --dt dt**2`` (Norse 1.1 writes tau = dt*tau_mem); Norse
``LIFCell`` (CubaLIF) -> the same and ``--cuba-input jump`` (its synaptic current jumps by its
input; its exporter writes w_in = 1).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STEPS, SEED, HIDDEN = 8, 0x1234ABCD, 64


@dataclass
class Peer:
    """One peer network: how to reset its state, run one step, and export it to NIR."""

    name: str
    net: torch.nn.Module
    reset_state: Callable[[], None]
    step: Callable[[torch.Tensor], torch.Tensor]  # input [B, 784] -> output spikes [B, 10]
    export: Callable[[], Any]  # -> nir.NIRGraph
    options: list[str]  # edgesnn import options
    lr: float = 3e-3


def _snntorch_peer(kind: str, mechanism: str, seed: int, hidden: dict[str, float],
                   out: dict[str, float]) -> Peer:
    """A 784-HIDDEN-10 snnTorch net of ``kind`` neurons (``Leaky`` or ``Synaptic``) with the
    given per-layer decays, its reset_mechanism with the default reset_delay=True."""
    import snntorch as snn
    from snntorch import utils as sutils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(seed)
    cls = getattr(snn, kind)
    kw: dict[str, Any] = {"reset_mechanism": mechanism, "init_hidden": True}

    def params(n: int, decays: dict[str, float]) -> dict[str, Any]:
        return {k: torch.full((n,), v) for k, v in decays.items()} | {"threshold": torch.ones(n)}

    net = torch.nn.Sequential(torch.nn.Linear(784, HIDDEN), cls(**params(HIDDEN, hidden), **kw),
                              torch.nn.Linear(HIDDEN, 10),
                              cls(**params(10, out), output=True, **kw))

    def export() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return export_to_nir(net, torch.zeros(1, 784), ignore_dims=[0])

    rule = {"subtract": "subtract_delayed"}.get(mechanism, mechanism)
    return Peer(f"snntorch {kind} {mechanism}", net, lambda: sutils.reset(net),
                lambda x: net(x)[0], export, ["--reset", rule])


def snntorch_leaky(mechanism: str) -> Peer:
    return _snntorch_peer("Leaky", mechanism, 1, {"beta": 0.9}, {"beta": 0.8})


def snntorch_synaptic(mechanism: str) -> Peer:
    """snnTorch ``Synaptic`` (NIR ``CubaLIF``): a synaptic current with its own decay alpha;
    edgesnn's neuron "cuba_lif". snnTorch's "zero" also drops the step's synaptic input, which
    no edgesnn reset does: subtract (delayed, the default) and none only."""
    return _snntorch_peer("Synaptic", mechanism, 4, {"alpha": 0.6, "beta": 0.8},
                          {"alpha": 0.5, "beta": 0.7})


def spikingjelly_node(kind: str) -> Peer:
    from spikingjelly.activation_based import functional, neuron
    from spikingjelly.activation_based.nir_exchange.to_nir import export_to_nir

    torch.manual_seed(2)

    def node() -> torch.nn.Module:  # hard reset to 0 (their NIR exporter refuses soft reset)
        if kind == "IFNode":
            return neuron.IFNode(v_reset=0.0)
        return neuron.LIFNode(tau=2.0, decay_input=True, v_reset=0.0)

    net = torch.nn.Sequential(torch.nn.Linear(784, HIDDEN), node(),
                              torch.nn.Linear(HIDDEN, 10), node())
    return Peer(f"spikingjelly {kind}", net, lambda: functional.reset_net(net), net,
                lambda: export_to_nir(net, torch.zeros(1, 784), dt=1e-4),
                ["--reset", "zero", "--fire", "ge", "--dt", "1e-4"])


def _norse_peer(cell: str, seed: int, lr: float) -> Peer:
    """A 784-HIDDEN-10 Norse net of ``cell`` (``LIFBoxCell`` or ``LIFCell``, Norse's default
    parameters) at Norse's default dt = 1e-3, exported with Norse's ``to_nir``."""
    import nir
    import norse.torch as nt
    from norse.torch.utils.export_nir import to_nir

    torch.manual_seed(seed)
    dt = 1e-3
    cls = getattr(nt, cell)
    net = nt.SequentialState(torch.nn.Linear(784, HIDDEN), cls(dt=dt),
                             torch.nn.Linear(HIDDEN, 10), cls(dt=dt))
    state: list[Any] = [None]

    def reset() -> None:
        state[0] = None

    def step(x: torch.Tensor) -> torch.Tensor:
        z, state[0] = net(x, state[0])
        return z

    def export() -> Any:
        graph = to_nir(net, torch.zeros(1, 784), dt=dt)
        # Norse 1.1 writes 0-dim neuron parameters, which nir.write (h5py) cannot store: give
        # them the layer's shape, as a Norse user has to before saving the file
        for name, node in graph.nodes.items():
            if isinstance(node, (nir.LIF, nir.CubaLIF)):
                (src,) = [a for a, b in graph.edges if b == name]
                n = np.asarray(graph.nodes[src].weight).shape[0]
                for field in ("tau", "tau_syn", "tau_mem", "r", "v_leak", "v_threshold",
                              "v_reset", "w_in"):
                    if not hasattr(node, field):
                        continue
                    value = np.asarray(getattr(node, field), dtype=np.float32)
                    setattr(node, field, np.full(n, float(value)) if value.ndim == 0 else value)
        return graph

    # Norse 1.1 writes tau = dt * tau (Norse issue 411): import at dt**2 (MAPPING.md)
    options = ["--reset", "zero", "--dt", repr(dt * dt)]
    # LIFCell's synaptic current jumps by its input (i = i + W z + b), which its to_nir leaves
    # as w_in = 1: import with --cuba-input jump
    if cell == "LIFCell":
        options += ["--cuba-input", "jump"]
    return Peer(f"norse {cell}", net, reset, step, export, options, lr=lr)


def norse_lifbox() -> Peer:
    # Norse scales the input by dt / tau_mem = 0.1: a larger step size trains it as fast
    return _norse_peer("LIFBoxCell", 3, 2e-2)


def norse_lifcell() -> Peer:
    """Norse ``LIFCell`` (NIR ``CubaLIF``, edgesnn's neuron "cuba_lif"): i = i + W z + b,
    v = v + dt/tau_mem (v_leak - v + i), spike v > v_th, v = v_reset, then i decays by
    dt/tau_syn; tau_syn = 5 ms, tau_mem = 10 ms (alpha 0.8, beta 0.9)."""
    return _norse_peer("LIFCell", 5, 1e-2)


PEERS: dict[str, Callable[[], Peer]] = {
    "snntorch-subtract": lambda: snntorch_leaky("subtract"),
    "snntorch-zero": lambda: snntorch_leaky("zero"),
    "snntorch-none": lambda: snntorch_leaky("none"),
    "snntorch-synaptic-subtract": lambda: snntorch_synaptic("subtract"),
    "snntorch-synaptic-none": lambda: snntorch_synaptic("none"),
    "spikingjelly-lif": lambda: spikingjelly_node("LIFNode"),
    "spikingjelly-if": lambda: spikingjelly_node("IFNode"),
    "norse-lifbox": norse_lifbox,
    "norse-lifcell": norse_lifcell,
}


def _peer_counts(peer: Peer, pixels: np.ndarray) -> torch.Tensor:
    from edgesnn.data.encoders import encode

    x = encode(torch.from_numpy(pixels), "rate", STEPS, SEED)
    peer.reset_state()
    counts = torch.zeros(pixels.shape[0], 10)
    for t in range(STEPS):
        counts = counts + peer.step(x[t])
    return counts


def compare(peer: Peer, data_dir: Path, work: Path, *, train: int, test: int
            ) -> dict[str, Any]:
    """Train ``peer`` in its library, export, import, run both; returns the measurements."""
    import nir

    from edgesnn.build import build_check_tool
    from edgesnn.cli import main
    from edgesnn.compress.quantize import extract, quantize
    from edgesnn.data import load_dataset
    from edgesnn.graph.esg import encode as encode_esg
    from edgesnn.graph.golden import simulate
    from edgesnn.snn.checkpoint import load

    tr = load_dataset("mnist", "train", data_dir, limit=train)
    te = load_dataset("mnist", "test", data_dir, limit=test)
    opt = torch.optim.Adam(peer.net.parameters(), lr=peer.lr)
    targets = torch.from_numpy(tr.labels).long()
    torch.manual_seed(0)
    for i in range(0, train, 50):
        loss = torch.nn.functional.cross_entropy(_peer_counts(peer, tr.images[i:i + 50]),
                                                 targets[i:i + 50])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        peer_counts = np.concatenate([_peer_counts(peer, te.images[i:i + 1000]).numpy()
                                      for i in range(0, test, 1000)])
    f = work / "peer.nir"
    nir.write(str(f), peer.export())
    run = work / "run"
    cli = ["import", str(f), "--out", str(run), "--steps", str(STEPS), "--encoder", "rate",
           "--encoder-seed", str(SEED), *peer.options]
    if main(cli) != 0:
        raise RuntimeError(f"{peer.name}: edgesnn import failed")
    model, _ = load(run)
    with torch.no_grad():
        out = [model.forward_pixels(torch.from_numpy(te.images[i:i + 1000]))
               for i in range(0, test, 1000)]
    counts = np.concatenate([o.counts.numpy() for o in out])
    pred = np.concatenate([o.prediction().numpy() for o in out])
    graph = quantize(extract(model), weight_bits=8, per_channel=True).to_graph()
    ref = simulate(graph, te.images)
    esg_path, px_path = work / "model.esg", work / "px.bin"
    esg_path.write_bytes(encode_esg(graph))
    px_path.write_bytes(np.ascontiguousarray(te.images[:100]).tobytes())
    proc = subprocess.run([str(build_check_tool(work / "tool")), "infer", str(esg_path),
                           str(px_path)], capture_output=True, text=True, timeout=300,
                          check=True)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    c_equal = all(np.array_equal(np.array([r[k] for r in rows]), getattr(ref, k)[:100])
                  for k in ("pred", "counts", "v_final", "spikes", "ops"))
    return {
        "peer": peer.name, "images": test,
        "import_options": " ".join(peer.options),
        "readout": model.config.readout, "bias": bool(model.config.bias),
        "counts_identical": float(np.mean(np.all(counts == peer_counts, axis=1))),
        "predictions_identical": float(np.mean(pred == peer_counts.argmax(axis=1))),
        "peer_accuracy": float(np.mean(peer_counts.argmax(axis=1) == te.labels)),
        "int8_golden_accuracy": float(np.mean(ref.pred == te.labels)),
        "c_equals_golden_100": c_equal,
    }


def main(argv: list[str] | None = None) -> int:
    from edgesnn.data import search_dirs

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=int, default=3000)
    p.add_argument("--test", type=int, default=10000)
    p.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    data_dir = next((d for d in search_dirs(None) if (d / "mnist").is_dir()), None)
    if data_dir is None:
        raise SystemExit("MNIST not found; set EDGESNN_DATA to the folder holding mnist/")
    torch.set_num_threads(2)
    rows = []
    for key in args.peers.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(compare(PEERS[key](), data_dir, Path(tmp), train=args.train,
                                test=args.test))
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print("| peer, rule | edgesnn import | counts identical | predictions identical | "
          "peer float acc | edgesnn int8 golden acc | C = golden |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['peer']} | `{r['import_options']}` | {100 * r['counts_identical']:.2f} % "
              f"| {100 * r['predictions_identical']:.2f} % | {100 * r['peer_accuracy']:.2f} % "
              f"| {100 * r['int8_golden_accuracy']:.2f} % | "
              f"{'yes' if r['c_equals_golden_100'] else 'NO'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
