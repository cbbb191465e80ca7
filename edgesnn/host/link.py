"""One device link: frames out, frames in, every sample accounted for.

:class:`DeviceLink` is a transport plus the frame decoder and the sequence-number allocator of
one device; :meth:`DeviceLink.handshake` PINGs until the device announces itself (HELLO).
:func:`stream_samples` drives the link: a bounded window of requests in flight, replies matched
by seq, a timeout on every read, retries of corrupted or lost requests, device resets (an
unexpected HELLO) answered by re-sending everything in flight. Each sample ends in exactly one
``on_result`` call, ``ok`` or ``failed`` with a reason; never dropped, never attributed to
another sample (every seq ever issued for a sample maps back to that sample until it completes;
replies to unknown seqs are counted as stale and ignored).

This module only talks to a device: it builds, trains and loads nothing; what the answers are
compared with, and where they are written, is :mod:`edgesnn.pipeline`'s business.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from edgesnn.host.protocol import (
    SEQ_UNKNOWN,
    DeviceError,
    Frame,
    FrameDecoder,
    FrameError,
    Hello,
    InferResult,
    MsgType,
    ProtocolError,
    infer,
    ping,
    status_name,
)
from edgesnn.host.transport import Transport, TransportError

log = logging.getLogger(__name__)

# Device statuses after which re-sending the same request can succeed.
_TRANSIENT = ("CRC", "FRAME", "BUSY", "OVERFLOW", "TIMEOUT")


class LinkError(RuntimeError):
    """The device stopped answering or the link broke; the message names the device."""


class ModelMismatch(LinkError):
    """The device runs a different model than the one expected."""


@dataclass
class LinkStats:
    requests: int = 0
    resent: int = 0
    timeouts: int = 0
    device_crc_errors: int = 0
    bad_frames_rx: int = 0
    stale_replies: int = 0
    duplicate_replies: int = 0
    resets: int = 0
    ok: int = 0
    failed: int = 0
    payload_bytes_tx: int = 0
    wire_bytes_tx: int = 0
    payload_bytes_rx: int = 0
    wire_bytes_rx: int = 0
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["samples_per_s"] = (self.ok + self.failed) / self.elapsed_s if self.elapsed_s else None
        total_p = self.payload_bytes_tx + self.payload_bytes_rx
        total_w = self.wire_bytes_tx + self.wire_bytes_rx
        d["link_efficiency"] = total_p / total_w if total_w else None
        return d


@dataclass
class SampleOutcome:
    """What the device said about one sample (or why it said nothing)."""

    index: int
    status: str  # "ok" | "failed"
    reason: str = ""
    prediction: int | None = None
    counts: list[int] | None = None
    ops: list[int] | None = None
    spikes: list[int] | None = None
    input_spikes: int | None = None
    cycles: int | None = None
    rtt_s: float | None = None
    attempts: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _InFlight:
    index: int
    pixels: bytes
    attempts: int = 0
    seqs: list[int] = field(default_factory=list)


class DeviceLink:
    """A transport plus the frame decoder and seq allocator of one device."""

    def __init__(self, transport: Transport, *, name: str | None = None,
                 poll_s: float = 0.02) -> None:
        self.transport = transport
        self.name = name or getattr(transport, "url", "device")
        self.decoder = FrameDecoder()
        self.poll_s = poll_s
        self._seq = 0
        self.hello: Hello | None = None
        self.stats = LinkStats()

    def next_seq(self, busy: dict[int, Any] | None = None) -> int:
        for _ in range(0xFFFF):
            self._seq = self._seq % 0xFFFE + 1  # 1..0xFFFE; 0 is a reset HELLO, 0xFFFF unknown
            if busy is None or self._seq not in busy:
                return self._seq
        raise LinkError(f"{self.name}: no free sequence number")

    def send(self, frame: Frame) -> None:
        wire = frame.encode()
        self.transport.write(wire)
        self.stats.payload_bytes_tx += len(frame.payload)
        self.stats.wire_bytes_tx += len(wire)

    def poll(self, timeout: float | None = None) -> list[Frame | FrameError]:
        data = self.transport.read(4096, self.poll_s if timeout is None else timeout)
        if not data:
            return []
        items = self.decoder.feed(data)
        self.stats.wire_bytes_rx += len(data)
        for it in items:
            if isinstance(it, Frame):
                self.stats.payload_bytes_rx += len(it.payload)
            else:
                self.stats.bad_frames_rx += 1
        return items

    def handshake(self, *, attempts: int = 5, timeout_s: float = 2.0) -> Hello:
        """PING until a HELLO answers (the host speaks first); returns and keeps it."""
        last = "no reply"
        for _ in range(attempts):
            seq = self.next_seq()
            self.send(ping(seq))
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                for item in self.poll():
                    if isinstance(item, FrameError):
                        last = f"bad frame ({item.reason})"
                        continue
                    if item.type != MsgType.HELLO:
                        continue
                    try:
                        hello = Hello.decode(item.payload)
                    except ProtocolError as exc:
                        last = str(exc)
                        continue
                    if item.seq in (seq, 0):
                        self.hello = hello
                        return hello
        raise LinkError(f"{self.name}: no HELLO after {attempts} PINGs ({last})")


def check_model(hello: Hello, expected_hash: bytes, device: str) -> None:
    if hello.model_hash != expected_hash:
        raise ModelMismatch(
            f"device {device} runs model {hello.model_hash.hex()} but RUN_DIR/model.esg is "
            f"{expected_hash.hex()}; re-flash the device (edgesnn eval --device PROFILE builds "
            f"and launches the current model)")


def stream_samples(link: DeviceLink, samples: Iterator[tuple[int, bytes]],
                   on_result: Callable[[SampleOutcome], None], *, window: int = 8,
                   timeout_s: float = 3.0, max_attempts: int = 6,
                   expected_hash: bytes | None = None,
                   n_classes: int | None = None, n_layers: int | None = None,
                   abort: threading.Event | None = None) -> LinkStats:
    """Send every ``(index, pixels)`` of ``samples``; call ``on_result`` once per sample.

    ``abort`` (set from another thread) ends the stream at once: the samples still in flight
    get no ``on_result`` call (a resumed evaluation sends them again).

    Raises :class:`LinkError` (with ``.unfinished``: the samples taken but not finished) if the
    transport breaks, and :class:`ModelMismatch` if a reset device comes back with another
    model.
    """
    if window < 1:
        raise ValueError(f"window={window}; must be >= 1")
    stats = link.stats
    t0 = time.monotonic()
    inflight: dict[int, _InFlight] = {}  # index -> entry
    owner: dict[int, int] = {}  # seq -> index, for every seq of an unfinished sample
    sent_at: dict[int, float] = {}  # seq -> send time
    order: dict[int, int] = {}  # seq -> send order
    counter = 0
    exhausted = False
    last_rx = time.monotonic()

    def send(entry: _InFlight) -> None:
        nonlocal counter
        seq = link.next_seq(owner)
        entry.attempts += 1
        entry.seqs.append(seq)
        owner[seq] = entry.index
        counter += 1
        order[seq] = counter
        sent_at[seq] = time.monotonic()
        stats.requests += 1
        link.send(infer(seq, entry.pixels))

    def finish(entry: _InFlight, outcome: SampleOutcome) -> None:
        del inflight[entry.index]
        for s in entry.seqs:
            owner.pop(s, None)
            sent_at.pop(s, None)
            order.pop(s, None)
        outcome.attempts = entry.attempts
        if outcome.status == "ok":
            stats.ok += 1
        else:
            stats.failed += 1
        on_result(outcome)

    def retry(entry: _InFlight, reason: str) -> None:
        if entry.attempts >= max_attempts:
            finish(entry, SampleOutcome(entry.index, "failed",
                                        f"{reason}; gave up after {entry.attempts} attempts"))
            return
        stats.resent += 1
        send(entry)

    def last_seq(entry: _InFlight) -> int:
        return entry.seqs[-1]

    try:
        while abort is None or not abort.is_set():
            while len(inflight) < window and not exhausted:
                try:
                    index, pixels = next(samples)
                except StopIteration:
                    exhausted = True
                    break
                entry = _InFlight(index, bytes(pixels))
                inflight[index] = entry
                send(entry)
            if not inflight and exhausted:
                break

            items = link.poll()
            if items:
                last_rx = time.monotonic()
            for item in items:
                if isinstance(item, FrameError):
                    continue  # the request's timeout or a later reply's order recovers it
                if not item.from_device:
                    continue  # an echo (loop://) or noise that happened to decode
                if item.type == MsgType.HELLO:
                    if item.seq != 0 and item.seq not in owner:
                        continue  # a late answer to our own PING
                    try:
                        hello = Hello.decode(item.payload)
                    except ProtocolError:
                        continue
                    stats.resets += 1
                    log.info("%s: device reset (unsolicited HELLO); re-sending %d in flight",
                             link.name, len(inflight))
                    if expected_hash is not None:
                        check_model(hello, expected_hash, link.name)
                    link.hello = hello
                    for entry in list(inflight.values()):
                        retry(entry, "device reset")
                    continue
                idx = owner.get(item.seq)
                if idx is None:
                    if item.seq != SEQ_UNKNOWN:
                        stats.stale_replies += 1
                    continue
                entry = inflight[idx]
                if item.type == MsgType.ERROR:
                    try:
                        err = DeviceError.decode(item.payload)
                    except ProtocolError:
                        continue
                    name = status_name(err.status)
                    if any(k in name for k in _TRANSIENT):
                        stats.device_crc_errors += 1
                        if item.seq == last_seq(entry):
                            retry(entry, f"device reported {name}")
                    else:
                        finish(entry, SampleOutcome(idx, "failed", f"device error {name}"))
                    continue
                if item.type != MsgType.RESULT:
                    continue
                try:
                    res = InferResult.decode(item.payload)
                except ProtocolError:
                    continue
                if (n_classes is not None and len(res.counts) != n_classes) or (
                        n_layers is not None and len(res.ops) != n_layers):
                    finish(entry, SampleOutcome(idx, "failed",
                                                f"RESULT shape {len(res.counts)} classes / "
                                                f"{len(res.ops)} layers does not match the "
                                                "model"))
                    continue
                answered = order[item.seq]
                rtt = time.monotonic() - sent_at[item.seq]
                finish(entry, SampleOutcome(
                    idx, "ok", prediction=res.prediction, counts=list(res.counts),
                    ops=list(res.ops), spikes=list(res.spikes), input_spikes=res.input_spikes,
                    cycles=res.cycles, rtt_s=rtt))
                # One request at a time, in order: anything sent before the answered request
                # and still unanswered was lost on the way (or its reply was).
                for other in list(inflight.values()):
                    if order[last_seq(other)] < answered:
                        retry(other, "request or reply lost")

            # A request times out when it is older than timeout_s AND the device has said
            # nothing for timeout_s: a busy device working through a deep queue is not dead.
            now = time.monotonic()
            for entry in list(inflight.values()):
                if now - max(sent_at[last_seq(entry)], last_rx) > timeout_s:
                    stats.timeouts += 1
                    retry(entry, f"no reply within {timeout_s:g} s")
    except (TransportError, OSError) as exc:
        err = LinkError(f"{link.name}: link broke: {exc}")
        err.unfinished = [(e.index, e.pixels) for e in inflight.values()]  # type: ignore[attr-defined]
        raise err from exc
    except Exception as exc:
        # whatever went wrong, the caller learns which samples are still open
        exc.unfinished = [(e.index, e.pixels) for e in inflight.values()]  # type: ignore[attr-defined]
        raise
    finally:
        stats.elapsed_s += time.monotonic() - t0
    return stats


