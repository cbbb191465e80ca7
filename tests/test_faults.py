"""The runner's accounting under injected faults: every sample ends exactly once, with the
device's true answer or an explicit failure, never another sample's answer."""

from __future__ import annotations

import numpy as np
import pytest

from edgesnn.graph.golden import simulate
from edgesnn.graph.synth import random_graph, random_pixels
from edgesnn.host.faults import FaultConfig, FaultyTransport
from edgesnn.host.link import DeviceLink, SampleOutcome, stream_samples
from edgesnn.host.simdevice import SimDevice, SimDeviceTransport

HASH = bytes(range(16))


@pytest.fixture(scope="module")
def graph_and_pixels():
    graph = random_graph(11, input_size=64, hidden=(24,), n_classes=10, steps=6)
    px = random_pixels(5, 1000, 64)
    return graph, px, simulate(graph, px)


def _run(graph, px, cfg: FaultConfig, *, window=8, max_attempts=8):
    dev = SimDevice(graph, HASH)
    transport = FaultyTransport(SimDeviceTransport(dev), cfg)
    link = DeviceLink(transport, poll_s=0.001)
    link.handshake(timeout_s=0.2, attempts=20)
    results: dict[int, SampleOutcome] = {}
    calls = []

    def on_result(o: SampleOutcome) -> None:
        calls.append(o.index)
        results[o.index] = o

    stats = stream_samples(link, ((i, px[i].tobytes()) for i in range(len(px))), on_result,
                           window=window, timeout_s=0.05, max_attempts=max_attempts,
                           expected_hash=HASH, n_classes=10, n_layers=2)
    return results, calls, stats, transport.stats, dev


def _check_accounting(results, calls, golden, n):
    assert sorted(calls) == list(range(n)), "every sample reported exactly once"
    misattributed = 0
    for i, o in results.items():
        if o.status == "ok":
            same = (o.prediction == golden.pred[i] and o.counts == golden.counts[i].tolist()
                    and o.ops == golden.ops[i].tolist()
                    and o.spikes == golden.spikes[i].tolist()
                    and o.input_spikes == golden.input_spikes[i])
            misattributed += not same
        else:
            assert o.status == "failed" and o.reason
    return misattributed


def test_clean_link_everything_matches(graph_and_pixels) -> None:
    graph, px, golden = graph_and_pixels
    results, calls, stats, fstats, _ = _run(graph, px[:200], FaultConfig())
    assert _check_accounting(results, calls, golden, 200) == 0
    assert all(o.status == "ok" and o.attempts == 1 for o in results.values())
    assert stats.resent == 0 and stats.ok == 200 and stats.resets == 0


def test_one_percent_corruption_loss_and_resets(graph_and_pixels) -> None:
    graph, px, golden = graph_and_pixels
    cfg = FaultConfig(corrupt=0.01, loss=0.01, dup=0.01, delay=0.005, delay_s=0.01,
                      reset_every=250, seed=1234)
    results, calls, stats, fstats, dev = _run(graph, px, cfg)
    assert _check_accounting(results, calls, golden, len(px)) == 0
    assert fstats.corrupted > 5 and fstats.lost > 5 and fstats.resets >= 3
    assert stats.resets >= 3 and dev.resets == fstats.resets
    assert stats.resent > 0
    ok = sum(o.status == "ok" for o in results.values())
    assert ok == len(px), "bounded retries recover every sample at 1 % faults"


def test_hopeless_link_fails_explicitly(graph_and_pixels) -> None:
    graph, px, golden = graph_and_pixels
    dev = SimDevice(graph, HASH)
    link = DeviceLink(SimDeviceTransport(dev), poll_s=0.001)
    link.handshake(timeout_s=0.2)
    # from now on every host frame is lost
    link.transport = FaultyTransport(link.transport, FaultConfig(loss=1.0, directions="tx"))
    seen: list[SampleOutcome] = []
    stream_samples(link, ((i, px[i].tobytes()) for i in range(20)), seen.append, window=4,
                   timeout_s=0.01, max_attempts=3)
    assert sorted(o.index for o in seen) == list(range(20))
    assert all(o.status == "failed" and "gave up after 3 attempts" in o.reason for o in seen)


def test_wrong_input_size_is_a_reasoned_failure(graph_and_pixels) -> None:
    graph, px, _ = graph_and_pixels
    link = DeviceLink(SimDeviceTransport(SimDevice(graph, HASH)), poll_s=0.001)
    link.handshake()
    seen: list[SampleOutcome] = []
    stream_samples(link, iter([(0, px[0].tobytes()[:-1]), (1, px[1].tobytes())]), seen.append,
                   timeout_s=0.05)
    by = {o.index: o for o in seen}
    assert by[0].status == "failed" and "ESNN_ERR_INPUT_SIZE" in by[0].reason
    assert by[1].status == "ok"


def test_fault_injection_is_seeded() -> None:
    a = FaultyTransport(SimDeviceTransport(SimDevice(random_graph(1), HASH)),
                        FaultConfig(corrupt=0.3, loss=0.3, seed=9))
    b = FaultyTransport(SimDeviceTransport(SimDevice(random_graph(1), HASH)),
                        FaultConfig(corrupt=0.3, loss=0.3, seed=9))
    frames = b"".join(bytes([3, 1, 2, 3, 0]) for _ in range(200))
    a.write(frames)
    b.write(frames)
    assert a.stats == b.stats and a.stats.lost > 20 and a.stats.corrupted > 20
    with pytest.raises(ValueError):
        FaultConfig(loss=1.5)
    assert np.isfinite(a.stats.lost)
