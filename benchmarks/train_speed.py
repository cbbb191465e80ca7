"""Training throughput: edgesnn vs snnTorch vs SpikingJelly on one identical workload.

Workload (all libraries): 784-256-10 bias-free LIF network (beta = 0.9, threshold 1,
subtract reset), T = 25, batch 128, Bernoulli rate-coded MNIST input (p = pixel / 256,
pre-drawn so that encoding cost is not measured), cross-entropy on output spike counts,
forward + backward + Adam step. Also measured: the matmul-only bound (the two Linear layers'
forward and backward matmuls on [T*B, 784] input, nothing else), and the fraction of it each
library reaches.

    .venv/bin/python benchmarks/train_speed.py [--batches 20] [--rounds 2] [--threads 2] [--json]

Peers are installed with ``.venv/bin/pip install --no-deps snntorch spikingjelly loguru``; a
peer that does not import is skipped with the reason. snnTorch runs its idiomatic per-step
loop (``snn.Leaky``, fast_sigmoid slope 25); SpikingJelly runs multi-step mode
(``LIFNode(tau=10, decay_input=False, v_reset=None)`` = beta 0.9 with soft reset,
``backend="torch"``, SuperSpike surrogate), cupy-free.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

T, B, N_IN, N_HID, N_OUT = 25, 128, 784, 256, 10


def _inputs(n_batches: int, seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    try:
        from edgesnn.data import load_dataset

        d = load_dataset("mnist", "train", limit=n_batches * B)
        pixels, labels = torch.from_numpy(d.images), torch.from_numpy(d.labels)
    except Exception as exc:  # noqa: BLE001 - benchmark still runs on synthetic pixels
        print(f"(MNIST not available: {exc}; using random pixels)", file=sys.stderr)
        pixels = torch.randint(0, 256, (n_batches * B, N_IN), dtype=torch.uint8, generator=g)
        labels = torch.randint(0, N_OUT, (n_batches * B,), generator=g)
    xs, ys = [], []
    for i in range(n_batches):
        p = pixels[i * B:(i + 1) * B].float() / 256.0
        xs.append((torch.rand(T, B, N_IN, generator=g) < p).float())
        ys.append(labels[i * B:(i + 1) * B])
    return xs, ys


def make_edgesnn() -> Callable[[torch.Tensor, torch.Tensor], float]:
    from edgesnn.snn import SNNConfig, SpikingMLP

    model = SpikingMLP(SNNConfig(hidden=[N_HID], steps=T, beta=0.9, slope=25.0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        loss = loss_fn(model(x).counts * 0.5, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())
    return step


def make_snntorch() -> Callable[[torch.Tensor, torch.Tensor], float]:
    import snntorch as snn
    from snntorch import surrogate

    grad = surrogate.fast_sigmoid(slope=25)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(N_IN, N_HID, bias=False)
            self.lif1 = snn.Leaky(beta=0.9, spike_grad=grad)
            self.fc2 = nn.Linear(N_HID, N_OUT, bias=False)
            self.lif2 = snn.Leaky(beta=0.9, spike_grad=grad)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
            count = 0
            for t in range(x.shape[0]):
                spk1, mem1 = self.lif1(self.fc1(x[t]), mem1)
                spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                count = count + spk2
            return count

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        loss = loss_fn(net(x) * 0.5, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())
    return step


def make_spikingjelly() -> Callable[[torch.Tensor, torch.Tensor], float]:
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    def lif() -> nn.Module:
        return neuron.LIFNode(tau=10.0, decay_input=False, v_reset=None, v_threshold=1.0,
                              surrogate_function=surrogate.SuperSpike(), detach_reset=True,
                              step_mode="m")

    net = nn.Sequential(layer.Linear(N_IN, N_HID, bias=False), lif(),
                        layer.Linear(N_HID, N_OUT, bias=False), lif())
    functional.set_step_mode(net, "m")
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        loss = loss_fn(net(x).sum(0) * 0.5, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        functional.reset_net(net)
        return float(loss.detach())
    return step


def make_matmul_bound() -> Callable[[torch.Tensor, torch.Tensor], float]:
    w1 = nn.Parameter(torch.randn(N_HID, N_IN) * 0.03)
    w2 = nn.Parameter(torch.randn(N_OUT, N_HID) * 0.06)

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        h = torch.nn.functional.linear(x.reshape(T * B, N_IN), w1)
        out = torch.nn.functional.linear(h, w2)
        out.sum().backward()
        w1.grad = w2.grad = None
        return 0.0
    return step


PEERS: dict[str, Callable[[], Callable[[torch.Tensor, torch.Tensor], float]]] = {
    "edgesnn": make_edgesnn,
    "snntorch": make_snntorch,
    "spikingjelly": make_spikingjelly,
    "matmul-bound": make_matmul_bound,
}


def measure(step: Callable, xs: list[torch.Tensor], ys: list[torch.Tensor]) -> float:
    """Samples per second over all batches (after 2 warm-up batches)."""
    for i in range(2):
        step(xs[i], ys[i])
    t0 = time.perf_counter()
    for x, y in zip(xs, ys, strict=True):
        step(x, y)
    return len(xs) * B / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=20, help="timed batches per round")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds; best is kept")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    xs, ys = _inputs(args.batches)
    steps: dict[str, Callable] = {}
    skipped: dict[str, str] = {}
    for name, make in PEERS.items():
        try:
            steps[name] = make()
        except Exception as exc:  # noqa: BLE001 - a missing peer is reported, not fatal
            skipped[name] = f"{type(exc).__name__}: {exc}"
            print(f"skipping {name}: {skipped[name]}", file=sys.stderr)
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, step in steps.items():
            best[name] = max(best.get(name, 0.0), measure(step, xs, ys))
    bound = best.get("matmul-bound")
    peers = {k: v for k, v in best.items() if k not in ("edgesnn", "matmul-bound")}
    fastest_peer = max(peers, key=peers.get) if peers else None
    result = {
        "workload": {"layers": [N_IN, N_HID, N_OUT], "steps": T, "batch": B,
                     "input": "Bernoulli rate p=pixel/256 (pre-drawn)",
                     "step": "forward+backward+Adam"},
        "threads": args.threads, "batches": args.batches, "rounds": args.rounds,
        "cpu_count": os.cpu_count(), "load_avg_1min": os.getloadavg()[0],
        "samples_per_s": {k: round(v, 1) for k, v in best.items()},
        "skipped": skipped,
        "edgesnn_vs_fastest_peer": (round(best["edgesnn"] / peers[fastest_peer], 3)
                                    if fastest_peer and "edgesnn" in best else None),
        "fastest_peer": fastest_peer,
        "fraction_of_matmul_bound": ({k: round(v / bound, 3) for k, v in best.items()
                                      if k != "matmul-bound"} if bound else None),
    }
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return 0
    print(f"784-256-10 LIF, T={T}, batch {B}, fwd+bwd+Adam, {args.threads} threads, best of "
          f"{args.rounds} x {args.batches} batches (load avg {result['load_avg_1min']:.1f})")
    print(f"{'library':<14}{'samples/s':>12}{'ms/batch':>11}{'vs edgesnn':>12}{'of bound':>10}")
    for name, v in sorted(best.items(), key=lambda kv: -kv[1]):
        rel = v / best["edgesnn"] if "edgesnn" in best else float("nan")
        frac = v / bound if bound else float("nan")
        print(f"{name:<14}{v:>12.0f}{1000 * B / v:>11.1f}{rel:>12.2f}{frac:>10.2f}")
    if result["edgesnn_vs_fastest_peer"] is not None:
        print(f"edgesnn / fastest peer ({fastest_peer}): {result['edgesnn_vs_fastest_peer']:.2f}x")
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
