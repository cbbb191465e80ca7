"""The link's accounting under injected faults: every sample ends exactly once, with the
device's true answer or an explicit failure, never another sample's answer; and the rules that
keep it so (stale replies, busy devices, transient vs final errors, resets into another model),
each against a scripted device so that a test fails when its rule is removed."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest

from edgesnn.graph.golden import simulate
from edgesnn.graph.synth import random_graph, random_pixels
from edgesnn.host.faults import FaultConfig, FaultyTransport
from edgesnn.host.link import (
    DeviceLink,
    ModelMismatch,
    RttEstimator,
    SampleOutcome,
    stream_samples,
)
from edgesnn.host.protocol import (
    SEQ_UNKNOWN,
    DeviceError,
    Frame,
    MsgType,
    decode_frame,
    device_frame,
    status_value,
)
from edgesnn.host.simdevice import SimDevice, SimDeviceTransport

HASH = bytes(range(16))
pytestmark = pytest.mark.timeout(60)  # a hang fails the test instead of stalling the suite


class VirtualClock:
    """Time that passes only when the link waits for bytes: runs are repeatable to the
    byte, whatever the machine's load."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Ticking:
    """A transport whose empty reads advance a :class:`VirtualClock` by the read timeout."""

    def __init__(self, inner, clock: VirtualClock) -> None:
        self.inner, self.clock = inner, clock
        self.url = "ticking"

    def write(self, data: bytes) -> int:
        self.clock.t += 1e-5
        return self.inner.write(data)

    def read(self, size: int = 4096, timeout: float | None = None) -> bytes:
        data = self.inner.read(size, 0)
        self.clock.t += 1e-5 if data else (timeout or 0.0)
        return data

    def reset_device(self) -> None:
        self.inner.reset_device()

    def reset_input_buffer(self) -> None:
        self.inner.reset_input_buffer()

    def close(self) -> None:
        self.inner.close()


class Scripted:
    """A :class:`SimDevice` behind a transport that a test scripts: ``answer(frame, reply)``
    gets each host frame and the device's reply bytes and returns the bytes to send instead;
    with ``service_s`` the device needs that long per request (replies come out in order)."""

    def __init__(self, device: SimDevice,
                 answer: Callable[[Frame, bytes], bytes] | None = None,
                 service_s: float = 0.0) -> None:
        self.device, self.answer, self.service_s = device, answer, service_s
        self.url = "scripted"
        self._buf = bytearray()
        self._out: list[tuple[float, bytes]] = []
        self._free = 0.0

    def write(self, data: bytes) -> int:
        self._buf += data
        while (end := self._buf.find(b"\x00")) >= 0:
            wire = bytes(self._buf[:end + 1])
            del self._buf[:end + 1]
            if wire == b"\x00":
                continue  # an empty frame (the host resynchronises): ignored, as a device does
            reply = self.device.feed(wire)
            if self.answer is not None:
                reply = self.answer(decode_frame(wire), reply)
            if reply:
                self._free = max(self._free, time.monotonic()) + self.service_s
                self._out.append((self._free, reply))
        return len(data)

    def read(self, size: int = 4096, timeout: float | None = None) -> bytes:
        now = time.monotonic()
        ready = [b for t, b in self._out if t <= now]
        if ready:
            self._out = [(t, b) for t, b in self._out if t > now]
            return b"".join(ready)
        time.sleep(min(timeout or 0.0, 0.002))
        return b""

    def reset_input_buffer(self) -> None:
        self._out.clear()

    def close(self) -> None:
        pass


def _error(seq: int, name: str) -> bytes:
    return device_frame(MsgType.ERROR, seq, DeviceError(status_value(name))).encode()


@pytest.fixture(scope="module")
def graph_and_pixels():
    graph = random_graph(11, input_size=64, hidden=(24,), n_classes=10, steps=6)
    px = random_pixels(5, 1000, 64)
    return graph, px, simulate(graph, px)


def _run(graph, px, cfg: FaultConfig, *, window=8, max_attempts=8, chunked=True):
    dev = SimDevice(graph, HASH)
    clock = VirtualClock()
    transport = FaultyTransport(Ticking(SimDeviceTransport(dev), clock), cfg, clock=clock)
    link = DeviceLink(transport, poll_s=0.001, clock=clock)
    link.handshake(timeout_s=0.2, attempts=20)
    results: dict[int, SampleOutcome] = {}
    calls = []

    def on_result(o: SampleOutcome) -> None:
        calls.append(o.index)
        results[o.index] = o

    stats = stream_samples(link, ((i, px[i].tobytes()) for i in range(len(px))), on_result,
                           window=window, timeout_s=0.05, max_attempts=max_attempts,
                           expected_hash=HASH, n_classes=10, n_layers=2, chunked=chunked)
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


@pytest.mark.parametrize("chunked", [True, False])
def test_one_percent_corruption_loss_and_resets(graph_and_pixels, chunked) -> None:
    graph, px, golden = graph_and_pixels
    cfg = FaultConfig(corrupt=0.01, loss=0.01, dup=0.01, delay=0.005, delay_s=0.01,
                      reset_every=250, seed=1234)
    results, calls, stats, fstats, dev = _run(graph, px, cfg, chunked=chunked)
    assert _check_accounting(results, calls, golden, len(px)) == 0
    assert fstats.corrupted > 5 and fstats.lost > 5 and fstats.resets >= 3
    assert stats.resets >= 3 and dev.resets == fstats.resets
    assert stats.resent > 0
    ok = sum(o.status == "ok" for o in results.values())
    assert ok == len(px), "bounded retries recover every sample at 1 % faults"
    # on virtual time the run is repeatable to the byte, whatever the machine's load
    again = _run(graph, px, cfg, chunked=chunked)
    assert again[2] == stats and again[3] == fstats


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


def test_a_stale_error_for_a_superseded_request_costs_no_attempt(graph_and_pixels) -> None:
    """Sample 0's first request goes unanswered; when its re-send arrives, the device first
    reports a CRC error for the old seq, then answers the new one. That ERROR is about a
    request already replaced: it must not count against the sample."""
    graph, px, golden = graph_and_pixels
    seen: list[int] = []

    def answer(frame: Frame, reply: bytes) -> bytes:
        seen.append(frame.seq)
        if len(seen) == 1:
            return b""  # the first INFER is lost
        if len(seen) == 2:
            return _error(seen[0], "ERR_FRAME_CRC") + reply
        return reply

    link = DeviceLink(Scripted(SimDevice(graph, HASH), answer), poll_s=0.001)
    link.hello = SimDevice(graph, HASH).hello
    out: list[SampleOutcome] = []
    stats = stream_samples(link, iter([(0, px[0].tobytes())]), out.append, window=1,
                           timeout_s=0.05, max_attempts=2, chunked=False)
    assert [o.status for o in out] == ["ok"], out[0].reason
    assert out[0].attempts == 2 and out[0].prediction == golden.pred[0]
    assert stats.stale_replies == 1 and stats.device_crc_errors == 0


def test_a_busy_device_that_keeps_answering_is_not_timed_out(graph_and_pixels) -> None:
    """30 ms per inference, 8 in flight: the last waits 240 ms, longer than the 100 ms
    timeout, but the device answers every 30 ms, so nothing is re-sent."""
    graph, px, golden = graph_and_pixels
    link = DeviceLink(Scripted(SimDevice(graph, HASH), service_s=0.03), poll_s=0.002)
    link.handshake()
    out: list[SampleOutcome] = []
    stats = stream_samples(link, ((i, px[i].tobytes()) for i in range(16)), out.append,
                           window=8, timeout_s=0.1)
    assert sorted(o.index for o in out) == list(range(16))
    assert all(o.status == "ok" and o.attempts == 1 for o in out)
    assert stats.timeouts == 0 and stats.resent == 0 and stats.polls == 0
    assert max(o.rtt_s or 0 for o in out) > 0.1, "the test must outlast the timeout"


@pytest.mark.parametrize("chunked", [True, False])
def test_frame_crc_errors_are_retried(graph_and_pixels, chunked) -> None:
    """The device reports a damaged frame (ESNN_ERR_FRAME_CRC, transient in esnn_status.def)
    for the first request of every sample: each sample is sent again and answered."""
    graph, px, golden = graph_and_pixels
    firsts: set[int] = set()

    def answer(frame: Frame, reply: bytes) -> bytes:
        if frame.type in (MsgType.INFER, MsgType.DATA) and len(firsts) < 10 \
                and frame.seq not in firsts and frame.seq % 2 == 1:
            firsts.add(frame.seq)
            return _error(frame.seq, "ERR_FRAME_CRC")
        return reply

    link = DeviceLink(Scripted(SimDevice(graph, HASH), answer), poll_s=0.001)
    link.handshake()
    out: list[SampleOutcome] = []
    stats = stream_samples(link, ((i, px[i].tobytes()) for i in range(20)), out.append,
                           window=1, timeout_s=0.5, max_attempts=3, chunked=chunked)
    assert all(o.status == "ok" for o in out), [o.reason for o in out if o.status != "ok"]
    assert [o.prediction for o in sorted(out, key=lambda o: o.index)] == \
        golden.pred[:20].tolist()
    assert stats.device_crc_errors == len(firsts) == 10


@pytest.mark.parametrize("status", ["ERR_HEADER_CRC", "ERR_SECTION_CRC", "ERR_TABLE_CRC",
                                    "ERR_INPUT_SIZE"])
def test_final_device_errors_are_not_retried(graph_and_pixels, status) -> None:
    """Model-validation CRC errors are not link faults: the sample fails at once, naming the
    status (a substring match on "CRC" would retry them)."""
    graph, px, _ = graph_and_pixels

    def answer(frame: Frame, reply: bytes) -> bytes:
        if frame.type in (MsgType.INFER, MsgType.DATA):
            return _error(frame.seq, status)
        return reply

    link = DeviceLink(Scripted(SimDevice(graph, HASH), answer), poll_s=0.001)
    link.handshake()
    out: list[SampleOutcome] = []
    stats = stream_samples(link, ((i, px[i].tobytes()) for i in range(3)), out.append,
                           window=1, timeout_s=0.5, max_attempts=3, chunked=False)
    assert [(o.status, o.attempts) for o in out] == [("failed", 1)] * 3
    assert all(f"ESNN_{status}" in o.reason for o in out)
    assert stats.resent == 0 and stats.device_crc_errors == 0


def test_a_device_that_resets_into_another_model_is_refused(graph_and_pixels) -> None:
    graph, px, golden = graph_and_pixels
    dev = SimDevice(graph, HASH)
    other = SimDevice(random_graph(12, input_size=64, hidden=(24,), n_classes=10, steps=6),
                      bytes(16))
    count = [0]

    def answer(frame: Frame, reply: bytes) -> bytes:
        count[0] += frame.type in (MsgType.INFER, MsgType.DATA)
        if count[0] == 10:  # the board is re-flashed with another model and reboots
            dev.graph, dev.hello = other.graph, other.hello
            return dev.reset()
        return reply

    link = DeviceLink(Scripted(dev, answer), poll_s=0.001)
    link.handshake()
    out: list[SampleOutcome] = []
    with pytest.raises(ModelMismatch, match="re-flash") as exc:
        stream_samples(link, ((i, px[i].tobytes()) for i in range(30)), out.append,
                       window=4, timeout_s=0.5, expected_hash=HASH, chunked=False)
    unfinished = [i for i, _ in exc.value.unfinished]  # type: ignore[attr-defined]
    assert sorted([o.index for o in out] + unfinished) == list(range(len(out) + len(unfinished)))
    assert all(o.status == "ok" and o.prediction == golden.pred[o.index] for o in out)
    assert unfinished, "the samples in flight are handed back, not answered by the new model"


def test_a_sample_fails_only_when_its_time_budget_is_spent(graph_and_pixels) -> None:
    graph, px, _ = graph_and_pixels
    clock = VirtualClock()
    dev = SimDevice(graph, HASH)
    link = DeviceLink(Ticking(SimDeviceTransport(dev), clock), poll_s=0.01, clock=clock)
    link.handshake()
    link.transport = FaultyTransport(link.transport, FaultConfig(loss=1.0, directions="tx"),
                                     clock=clock)
    out: list[SampleOutcome] = []
    stats = stream_samples(link, iter([(0, px[0].tobytes())]), out.append, timeout_s=0.2,
                           budget_s=3.0)
    (o,) = out
    assert o.status == "failed" and o.reason.startswith("time budget of 3 s spent")
    assert "last: no reply within" in o.reason and stats.timeouts >= 10
    assert 3.0 < clock.t < 3.5


def _damaged(reply: bytes) -> bytes:
    buf = bytearray(reply)
    mid = len(buf) // 2
    buf[mid] ^= 0x55 if buf[mid] != 0x55 else 0xAA
    return bytes(buf)


@pytest.mark.parametrize("instead", [
    _damaged,  # the RESULT with one byte changed
    lambda reply: _error(SEQ_UNKNOWN, "ERR_FRAME_CRC"),  # the device could not read the seq
    lambda reply: _error(0x7777, "ERR_FRAME_CRC"),  # ... or read it wrong
], ids=["damaged-result", "error-seq-unknown", "error-seq-wrong"])
def test_a_lost_answer_is_asked_for_again_without_waiting_for_the_timeout(
        graph_and_pixels, instead: Callable[[bytes], bytes]) -> None:
    """The device answers every frame, so a damaged answer (or a link-fault ERROR that names
    no request in flight) followed by silence is a lost answer to the newest request: the
    runner POLLs once the device has been quiet for a round trip, well before the reply
    timeout; no timeout is counted, no attempt spent (at 1e-2 byte faults waiting each one out
    made the link ten times slower)."""
    graph, px, golden = graph_and_pixels
    clock = VirtualClock()
    data = [0]

    def answer(frame: Frame, reply: bytes) -> bytes:
        if frame.type == MsgType.DATA and reply:
            data[0] += 1
            if data[0] == 6:  # what comes back for sample 5's request
                return instead(reply)
        return reply

    link = DeviceLink(Ticking(Scripted(SimDevice(graph, HASH), answer), clock), poll_s=0.001,
                      clock=clock)
    link.handshake()
    out: list[SampleOutcome] = []
    t0 = clock.t
    stats = stream_samples(link, ((i, px[i].tobytes()) for i in range(10)), out.append,
                           window=1, timeout_s=5.0)
    assert [(o.status, o.attempts) for o in out] == [("ok", 1)] * 10
    assert [o.prediction for o in out] == golden.pred[:10].tolist()
    assert stats.polls == 1 and stats.timeouts == 0 and stats.resent == 0
    assert clock.t - t0 < RttEstimator.FLOOR_S, "asked again before any timeout could expire"
