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
tau = dt * tau_mem, exporters/nir/MAPPING.md).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

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
                                 "spikingjelly-lif", "spikingjelly-if", "norse-lifbox"])
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
