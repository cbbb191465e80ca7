"""One device link: frames out, frames in, every sample accounted for.

:class:`DeviceLink` is a transport plus the frame decoder and the sequence-number allocator of
one device; :meth:`DeviceLink.handshake` PINGs until the device announces itself (HELLO).
:func:`stream_samples` drives the link: a bounded window of requests in flight, replies matched
by seq, device resets (an unexpected HELLO) answered by re-sending everything in flight. Each
sample ends in exactly one ``on_result`` call, ``ok`` or ``failed`` with the reason; never
dropped, never attributed to another sample (every seq ever issued for a sample maps back to
that sample until it completes; replies to unknown seqs are counted as stale and ignored).

Requests (PROTOCOL.md). A version-2 device that offers ``chunk_max`` in HELLO gets each input
as DATA chunks in the encoding it decodes that is smallest on the wire, each chunk its own
CRC-checked frame; a NAK names the chunks still missing and only those are sent again (while
the device still holds the request), a POLL asks again for a RESULT that may have been lost.
With ``chunked=False`` (or a device without DATA) an input is one INFER frame.

Retries adapt. The reply timeout is the measured round trip (smoothed mean plus four mean
deviations, Jacobson/Karels, from answers to requests written once, Karn) between 10 ms and
``timeout_s`` (1 s before the first measurement), doubled for each timeout in a row of that
sample; a request times out only when it is that old AND the device has said nothing for that
long, so a busy device working through a deep queue is not retried. The device answers every
frame it receives (a damaged one with an ERROR), so when an answer to the newest chunked
request arrives damaged and the device then stays quiet for a mean round trip, that request
asks again at once (POLL) instead of waiting out the timeout; an ERROR to a request written
once seeds the estimator while nothing else has measured it. The chunk size follows
the per-byte error rate estimated from the chunks NAKs and frame-CRC errors report damaged
(:class:`ChunkSizer`), within the device's ``chunk_max``. A sample
fails only when its time budget (``budget_s`` from its first send, not counting the time it
waits unsent for room in a window that shrank) is spent, or after
``max_attempts`` whole sends when that is given, or on an error the status table marks as
final (only ``ESNN_TRANSIENT`` statuses in ``esnn_status.def`` are retried); the reason says
which, and what went wrong last.

This module only talks to a device: it builds, trains and loads nothing; what the answers are
compared with, and where they are written, is :mod:`edgesnn.pipeline`'s business.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from edgesnn.host.protocol import (
    CHUNK_HEADER,
    CHUNK_OVERHEAD,
    SEQ_UNKNOWN,
    ChunkedRequest,
    DeviceError,
    Frame,
    FrameDecoder,
    FrameError,
    Hello,
    InferResult,
    MsgType,
    Nak,
    ProtocolError,
    infer,
    is_transient,
    ping,
)
from edgesnn.host.transport import Transport, TransportError

log = logging.getLogger(__name__)

Clock = Callable[[], float]

class LinkError(RuntimeError):
    """The device stopped answering or the link broke; the message names the device."""


class ModelMismatch(LinkError):
    """The device runs a different model than the one expected."""


@dataclass
class LinkStats:
    requests: int = 0  # whole requests sent (first sends and full re-sends)
    resent: int = 0  # of those, re-sends
    chunks_resent: int = 0  # DATA chunks sent again after a NAK
    polls: int = 0
    naks: int = 0
    timeouts: int = 0
    device_crc_errors: int = 0  # ERRORs the device marks transient (link faults)
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
        d["rto_s"] = self.rto_s
        d["chunk_data_bytes"] = self.chunk_data_bytes
        return d

    rto_s: float | None = None  # the reply timeout in force at the end
    chunk_data_bytes: int | None = None  # the chunk size in force at the end


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
    first_sent: float = 0.0
    attempts: int = 0  # whole sends
    seqs: list[int] = field(default_factory=list)
    request: ChunkedRequest | None = None  # the chunks of the newest seq (chunked mode)
    timeouts_in_row: int = 0
    retried: bool = False  # needed a second round
    polls: int = 0  # POLLs in a row that got no answer
    parked: bool = False  # waits, unsent, for room in a window that shrank
    parked_at: float = 0.0
    damaged: bool = False  # an answer since the latest write arrived damaged (or as an ERROR)
    polled: bool = False  # the latest write was a lone POLL: it has one answer coming
    last_problem: str = ""


class DeviceLink:
    """A transport plus the frame decoder and seq allocator of one device."""

    def __init__(self, transport: Transport, *, name: str | None = None,
                 poll_s: float = 0.02, clock: Clock = time.monotonic) -> None:
        self.transport = transport
        self.clock = clock
        self.name = name or getattr(transport, "url", "device")
        self.decoder = FrameDecoder()
        self.poll_s = poll_s
        self._seq = 0
        self.bytes_at = clock()  # when the latest bytes came in (a frame may be half in)
        self.hello: Hello | None = None
        self.stats = LinkStats()

    def next_seq(self, busy: dict[int, Any] | None = None) -> int:
        for _ in range(0xFFFF):
            self._seq = self._seq % 0xFFFE + 1  # 1..0xFFFE; 0 is a reset HELLO, 0xFFFF unknown
            if busy is None or self._seq not in busy:
                return self._seq
        raise LinkError(f"{self.name}: no free sequence number")

    def send(self, *frames: Frame, resync: bool = False) -> None:
        """Write ``frames`` in one transport write (a request's chunks stay together); with
        ``resync``, after a lone 0x00 that ends whatever the device holds of a frame whose
        delimiter was lost, so that the first of ``frames`` is not swallowed with it (the
        device ignores the empty frame)."""
        wire = (b"\x00" if resync else b"") + b"".join(f.encode() for f in frames)
        self.transport.write(wire)
        self.stats.payload_bytes_tx += sum(len(f.payload) for f in frames)
        self.stats.wire_bytes_tx += len(wire)

    def poll(self, timeout: float | None = None) -> list[Frame | FrameError]:
        data = self.transport.read(4096, self.poll_s if timeout is None else timeout)
        if not data:
            return []
        self.bytes_at = self.clock()
        items = self.decoder.feed(data)
        self.stats.wire_bytes_rx += len(data)
        for it in items:
            if isinstance(it, Frame):
                self.stats.payload_bytes_rx += len(it.payload)
            else:
                self.stats.bad_frames_rx += 1
        return items

    def flush_partial(self) -> bool:
        """End the frame the decoder holds, if any, as a damaged one: called when the device
        has been silent too long for it to be still arriving (its delimiter was lost). True
        when there was one."""
        items = self.decoder.feed(b"\x00")
        self.stats.bad_frames_rx += len(items)
        return bool(items)

    def handshake(self, *, attempts: int = 5, timeout_s: float = 2.0) -> Hello:
        """PING until a HELLO answers (the host speaks first); returns and keeps it."""
        last = "no reply"
        for _ in range(attempts):
            seq = self.next_seq()
            self.send(ping(seq))
            deadline = self.clock() + timeout_s
            while self.clock() < deadline:
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




class RttEstimator:
    """Reply timeout from measured round trips (Jacobson/Karels, as TCP's RTO)."""

    FLOOR_S = 0.01  # a pseudo-terminal answers in well under a millisecond
    QUIET_FLOOR_S = 0.002
    MAX_BACKOFF = 1  # doublings: a timeout here is a lost frame, not congestion

    def __init__(self, ceiling: float, floor: float | None = None) -> None:
        self.ceiling = ceiling
        self.floor = min(ceiling, self.FLOOR_S if floor is None else floor)
        self.srtt: float | None = None
        self.rttvar = 0.0

    def sample(self, rtt: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt

    def rto(self, backoff: int = 0) -> float:
        """The timeout for a request after ``backoff`` timeouts in a row (before any
        measurement: 1 s, RFC 6298's initial value, or the ceiling if lower)."""
        if self.srtt is None:
            return min(self.ceiling, 1.0 * 2 ** min(backoff, 16))
        base = max(self.floor, self.srtt + 4 * self.rttvar)
        return min(self.ceiling, base * 2 ** min(backoff, self.MAX_BACKOFF))

    def quiet(self) -> float:
        """How long the device must stay silent after a damaged answer before the host asks
        again: the device answers every frame it gets, so a damaged answer followed by
        silence is a lost answer, no need to wait out :meth:`rto`. The mean round trip (the
        answers still on the way arrive within it), at least 2 ms, at most the timeout."""
        if self.srtt is None:
            return self.rto()
        return min(self.rto(), max(self.QUIET_FLOOR_S, self.srtt))


class ChunkSizer:
    """Chunk data bytes from the measured share of damaged chunks: with a per-byte error rate
    ``p`` and ``h`` bytes of overhead per chunk, ``d`` data bytes arrive whole ``(1 - p)^(d +
    h)`` of the time, and ``d = (sqrt(h^2 + 4h / -ln(1 - p)) - h) / 2`` maximises the data
    delivered per byte sent, ``d / (d + h) * (1 - p)^(d + h)``. Starts at the device's
    ``chunk_max``."""

    MIN_DATA = 16

    def __init__(self, chunk_max: int) -> None:
        self.max_data = chunk_max - CHUNK_HEADER
        self.data = self.max_data
        self.sent = 0.0  # decayed counts of chunks sent and of chunks reported missing
        self.lost = 0.0
        self.bytes = 0.0

    def on_sent(self, chunks: int, wire_bytes: int) -> None:
        self.sent += chunks
        self.bytes += wire_bytes

    def on_missing(self, chunks: int) -> None:
        self.lost += chunks
        self._update()

    def _update(self) -> None:
        if self.sent < 20:
            return
        frame = self.bytes / self.sent  # mean wire bytes per chunk frame
        share = min(self.lost / self.sent, 0.99)
        p = 1 - (1 - share) ** (1 / frame) if share > 0 else 0.0
        h = CHUNK_OVERHEAD
        target = self.max_data if p <= 0 else int(
            (math.sqrt(h * h + 4 * h / -math.log1p(-p)) - h) / 2)
        self.data = max(self.MIN_DATA, min(self.max_data, target))
        if self.sent > 2000:  # forget slowly: the link may get better or worse
            self.sent, self.lost, self.bytes = self.sent / 2, self.lost / 2, self.bytes / 2


class _Stream:
    """The state of one :func:`stream_samples` call."""

    MAX_POLLS = 8  # unanswered POLLs in a row before the request is sent whole again

    def __init__(self, link: DeviceLink, on_result: Callable[[SampleOutcome], None], *,
                 window: int, timeout_s: float, max_attempts: int | None, budget_s: float,
                 expected_hash: bytes | None, n_classes: int | None, n_layers: int | None,
                 chunked: bool) -> None:
        self.link, self.on_result, self.window = link, on_result, window
        self.max_attempts, self.budget_s = max_attempts, budget_s
        self.expected_hash, self.n_classes, self.n_layers = expected_hash, n_classes, n_layers
        self.stats = link.stats
        self.clock = link.clock
        self.rtt = RttEstimator(timeout_s)
        hello = link.hello
        self.chunked = bool(chunked and hello is not None and hello.chunk_max > CHUNK_HEADER + 2)
        self.sizer = ChunkSizer(hello.chunk_max) if self.chunked and hello else None
        self.inflight: dict[int, _InFlight] = {}  # index -> entry
        self.owner: dict[int, int] = {}  # seq -> index, every seq of an unfinished sample
        self.sent_at: dict[int, float] = {}  # seq -> time of the latest send under it
        self.order: dict[int, int] = {}  # seq -> position of the latest send under it
        self.writes: dict[int, int] = {}  # seq -> writes under it (Karn: time only one)
        self.counter = 0
        self.last_rx = self.clock()
        self.sends = 0.0  # decayed counts of whole requests sent and of the rounds that had
        self.rework = 0.0  # to follow them (POLL, NAK, re-send): the window adapts
        self.whole_sends = 0  # not decayed: enough requests went out to judge the share

    def window_now(self) -> int:
        """The device keeps one chunked request at a time, so a re-send of only the missing
        chunks works while nothing newer went out: pipeline while under 5 % of the requests
        need another round, else one request at a time."""
        # (both counts decay at every event, so at high error rates, with many rounds per
        # request, ``sends`` stays small: the warm-up must not be judged by it)
        if self.chunked and self.whole_sends >= 10 and self.rework > 0.05 * self.sends:
            return 1
        return self.window

    def _count(self, send: int, rework: int) -> None:
        self.sends = self.sends * 0.99 + send
        self.whole_sends += send
        self.rework = self.rework * 0.99 + rework

    # -- sending -------------------------------------------------------------------------
    def _write(self, entry: _InFlight, seq: int, frames: list[Frame],
               resync: bool = False) -> None:
        self.counter += 1
        entry.damaged = False
        entry.polled = len(frames) == 1 and frames[0].type == MsgType.POLL
        self.order[seq] = self.counter
        self.sent_at[seq] = self.clock()
        self.writes[seq] = self.writes.get(seq, 0) + 1
        self.link.send(*frames, resync=resync)
        if self.sizer is not None and frames and frames[0].type == MsgType.DATA:
            self.sizer.on_sent(len(frames), sum(len(f.payload) + CHUNK_OVERHEAD - CHUNK_HEADER
                                                for f in frames))

    def send_full(self, entry: _InFlight) -> None:
        """The whole request again, under a new seq."""
        seq = self.link.next_seq(self.owner)
        self._count(1, entry.attempts > 0)
        entry.attempts += 1
        entry.polls = 0
        entry.seqs.append(seq)
        self.owner[seq] = entry.index
        self.stats.requests += 1
        if self.chunked:
            hello = self.link.hello
            assert hello is not None and self.sizer is not None
            entry.request = ChunkedRequest(seq, entry.pixels,
                                           chunk_max=self.sizer.data + CHUNK_HEADER,
                                           encodings=hello.encodings)
            self._write(entry, seq, entry.request.frames(), resync=entry.attempts > 1)
        else:
            self._write(entry, seq, [infer(seq, entry.pixels)], resync=entry.attempts > 1)

    def is_newest(self, entry: _InFlight) -> bool:
        """Nothing was written after this sample's latest send: the device still holds its
        chunks (it keeps one request at a time)."""
        return self.order.get(entry.seqs[-1]) == self.counter

    def ask_again(self, entry: _InFlight, problem: str) -> None:
        """Something of this request went missing: POLL while the device still holds it
        (the answer is the RESULT or a NAK naming the missing chunks), else (or after
        ``MAX_POLLS`` unanswered POLLs in a row) send it whole."""
        entry.last_problem = problem
        entry.retried = True
        if (self.chunked and entry.request is not None and entry.polls < self.MAX_POLLS
                and self.is_newest(entry)):
            self.stats.polls += 1
            self._count(0, 1)
            entry.polls += 1
            self._write(entry, entry.seqs[-1], [entry.request.poll()], resync=True)
            return
        self.resend(entry, problem)

    def resend(self, entry: _InFlight, problem: str) -> None:
        entry.last_problem = problem
        entry.retried = True
        if self.max_attempts is not None and entry.attempts >= self.max_attempts:
            self.finish(entry, SampleOutcome(
                entry.index, "failed", f"{problem}; gave up after {entry.attempts} attempts"))
            return
        if self.active() > self.window_now():
            # the window shrank under it: wait, so that requests in flight do not keep
            # replacing each other's chunks in the device
            entry.parked = True
            entry.parked_at = self.clock()
            return
        self.stats.resent += 1
        self.send_full(entry)

    def active(self) -> int:
        return sum(not e.parked for e in self.inflight.values())

    def refill(self, samples: Iterator[tuple[int, bytes]]) -> bool:
        """Send parked samples, then new ones, while the window has room; False once
        ``samples`` is exhausted."""
        while self.active() < self.window_now():
            parked = [e for e in self.inflight.values() if e.parked]
            if parked:
                entry = min(parked, key=lambda e: e.first_sent)
                entry.parked = False
                entry.first_sent += self.clock() - entry.parked_at  # parked time is free
                self.stats.resent += 1
                self.send_full(entry)
                continue
            try:
                index, pixels = next(samples)
            except StopIteration:
                return False
            entry = _InFlight(index, bytes(pixels), first_sent=self.clock())
            self.inflight[index] = entry
            self.send_full(entry)
        return True

    def on_nak(self, entry: _InFlight, nak: Nak) -> None:
        self.stats.naks += 1
        req = entry.request
        if req is None or nak.total == 0 or nak.total != len(req.chunks) \
                or not self.is_newest(entry):
            self.resend(entry, "the device lost the request's chunks")
            return
        missing = nak.indices()
        if self.sizer is not None:
            self.sizer.on_missing(len(missing))
        entry.last_problem = f"{len(missing)} of {nak.total} chunks damaged"
        entry.retried = True
        self._count(0, 1)
        self.stats.chunks_resent += len(missing)
        self._write(entry, entry.seqs[-1], req.on_nak(nak), resync=True)

    # -- results -------------------------------------------------------------------------
    def finish(self, entry: _InFlight, outcome: SampleOutcome) -> None:
        del self.inflight[entry.index]
        for s in entry.seqs:
            self.owner.pop(s, None)
            self.sent_at.pop(s, None)
            self.order.pop(s, None)
            self.writes.pop(s, None)
        outcome.attempts = entry.attempts
        if outcome.status == "ok":
            self.stats.ok += 1
        else:
            self.stats.failed += 1
        self.on_result(outcome)

    def on_result_frame(self, entry: _InFlight, seq: int, payload: bytes) -> None:
        try:
            res = InferResult.decode(payload)
        except ProtocolError:
            return
        if (self.n_classes is not None and len(res.counts) != self.n_classes) or (
                self.n_layers is not None and len(res.ops) != self.n_layers):
            self.finish(entry, SampleOutcome(
                entry.index, "failed", f"RESULT shape {len(res.counts)} classes / "
                f"{len(res.ops)} layers does not match the model"))
            return
        rtt = self.clock() - self.sent_at[seq]
        self.time_answer(seq)
        self.finish(entry, SampleOutcome(
            entry.index, "ok", prediction=res.prediction, counts=list(res.counts),
            ops=list(res.ops), spikes=list(res.spikes), input_spikes=res.input_spikes,
            cycles=res.cycles, rtt_s=rtt))

    def time_answer(self, seq: int) -> None:
        """A round trip for the estimator, when the answer can only be to one write (Karn)."""
        if self.writes.get(seq) == 1:
            self.rtt.sample(self.clock() - self.sent_at[seq])

    def on_hello(self, frame: Frame) -> None:
        if frame.seq != 0 and frame.seq not in self.owner:
            return  # a late answer to our own PING
        try:
            hello = Hello.decode(frame.payload)
        except ProtocolError:
            return
        self.stats.resets += 1
        log.info("%s: device reset (unsolicited HELLO); re-sending %d in flight",
                 self.link.name, len(self.inflight))
        if self.expected_hash is not None:
            check_model(hello, self.expected_hash, self.link.name)
        self.link.hello = hello
        for entry in sorted(self.inflight.values(), key=lambda e: self.order[e.seqs[-1]]):
            if not entry.parked:
                self.resend(entry, "device reset")

    def on_frame(self, frame: Frame) -> None:
        if not frame.from_device:
            return  # an echo (loop://) or noise that happened to decode
        if frame.type == MsgType.HELLO:
            self.on_hello(frame)
            return
        idx = self.owner.get(frame.seq)
        if idx is None:
            if frame.seq != SEQ_UNKNOWN:
                self.stats.stale_replies += 1
            self.on_foreign_error(frame)
            return
        entry = self.inflight[idx]
        answered = self.order[frame.seq]
        current = frame.seq == entry.seqs[-1]
        if frame.type == MsgType.RESULT:
            self.on_result_frame(entry, frame.seq, frame.payload)
        elif not current:
            # an ERROR or NAK about a request this sample has since sent again: the newer
            # send is answered on its own, so this costs no attempt
            self.stats.stale_replies += 1
            self.on_foreign_error(frame)
            return
        elif frame.type == MsgType.NAK:
            try:
                nak = Nak.decode(frame.payload)
            except ProtocolError:
                return
            self.time_answer(frame.seq)
            entry.timeouts_in_row = 0
            entry.polls = 0
            self.on_nak(entry, nak)
        elif frame.type == MsgType.ERROR:
            try:
                err = DeviceError.decode(frame.payload)
            except ProtocolError:
                return
            if is_transient(err.status):
                self.stats.device_crc_errors += 1
                entry.last_problem = f"device reported {err.name}"
                if self.rtt.srtt is None:
                    # at high error rates a first measurement may take long to come: an ERROR
                    # to a request written once is one (possibly short: a multi-chunk request
                    # may be hit early) to start from
                    self.time_answer(frame.seq)
                if self.sizer is None:
                    self.ask_again(entry, entry.last_problem)  # the one INFER frame was hit
                else:
                    # one chunk was hit: the NAK that answers the request's last chunk names
                    # it, or (that chunk hit) the timeout POLLs for that NAK
                    self.sizer.on_missing(1)
                    entry.damaged = True
                    return
            else:
                self.finish(entry, SampleOutcome(
                    entry.index, "failed", f"device error {err.name}"
                    + (f" ({err.text})" if err.text else "")))
        else:
            return
        # The device answers one request at a time, in order: anything sent before the
        # answered request and still unanswered was lost on the way (or its reply was).
        for other in list(self.inflight.values()):
            if not other.parked and self.order[other.seqs[-1]] < answered:
                self.ask_again(other, "request or reply lost")

    # -- time ----------------------------------------------------------------------------
    def check_time(self) -> None:
        now = self.clock()
        quiet = self.rtt.quiet()
        if self.chunked and now - self.link.bytes_at > quiet and self.link.flush_partial():
            self.on_bad_frame()  # an answer whose delimiter was lost: no need to time out
        for entry in list(self.inflight.values()):
            # a parked sample's budget stands still: it waits for others, not for the device
            if (entry.parked_at if entry.parked else now) - entry.first_sent > self.budget_s:
                why = entry.last_problem or "no answer"
                self.finish(entry, SampleOutcome(
                    entry.index, "failed", f"time budget of {self.budget_s:g} s spent "
                    f"({entry.attempts} attempts; last: {why})"))
                continue
            if entry.parked:
                continue
            rto = self.rtt.rto(entry.timeouts_in_row)
            silent = now - max(self.sent_at[entry.seqs[-1]], self.last_rx)
            # after a lone POLL the damaged answer was the one answer coming: ask again now
            if entry.damaged and self.chunked and self.is_newest(entry) and (entry.polled or (
                    now - max(self.sent_at[entry.seqs[-1]], self.link.bytes_at) > quiet)):
                self.ask_again(entry, "answer damaged")
                continue
            # old enough AND the device silent that long: a busy device is not dead
            if silent > rto:
                self.stats.timeouts += 1
                entry.timeouts_in_row += 1
                self.ask_again(entry, f"no reply within {rto:.3g} s")

    def on_foreign_error(self, frame: Frame) -> None:
        """A link-fault ERROR that names no current request (its seq unreadable, damaged, or
        superseded): the device got a damaged frame, most likely the latest one sent; treated
        as a damaged answer (:meth:`on_bad_frame`), never as a failure."""
        if frame.type != MsgType.ERROR:
            return
        try:
            err = DeviceError.decode(frame.payload)
        except ProtocolError:
            return
        if is_transient(err.status):
            self.on_bad_frame()

    def on_bad_frame(self) -> None:
        """A damaged frame from the device: an answer lost, most likely to the newest request
        (its seq is unreadable). The device is alive, so an unanswered POLL does not count
        as one; and once the device falls silent, that request asks again without waiting
        for its timeout (:meth:`RttEstimator.quiet`)."""
        for entry in self.inflight.values():
            if not entry.parked and entry.seqs and self.is_newest(entry):
                entry.damaged = True
                entry.polls = 0
                return

    def unfinished(self) -> list[tuple[int, bytes]]:
        return [(e.index, e.pixels) for e in self.inflight.values()]


def stream_samples(link: DeviceLink, samples: Iterator[tuple[int, bytes]],
                   on_result: Callable[[SampleOutcome], None], *, window: int = 8,
                   timeout_s: float = 5.0, max_attempts: int | None = None,
                   budget_s: float = 60.0, expected_hash: bytes | None = None,
                   n_classes: int | None = None, n_layers: int | None = None,
                   abort: threading.Event | None = None, chunked: bool = True) -> LinkStats:
    """Send every ``(index, pixels)`` of ``samples``; call ``on_result`` once per sample.

    ``timeout_s`` caps the adaptive reply timeout; ``budget_s`` is each sample's time budget
    from its first send (time parked for window room not counted); ``max_attempts`` (None:
    only the budget) caps whole sends;
    ``chunked`` sends DATA chunks when the device offers them (see the module docstring).
    ``abort`` (set from another thread) ends the stream at once: the samples still in flight
    get no ``on_result`` call (a resumed evaluation sends them again).

    Raises :class:`LinkError` (with ``.unfinished``: the samples taken but not finished) if the
    transport breaks, and :class:`ModelMismatch` if a reset device comes back with another
    model.
    """
    if window < 1:
        raise ValueError(f"window={window}; must be >= 1")
    if not (timeout_s > 0 and math.isfinite(timeout_s)):
        raise ValueError(f"timeout_s={timeout_s}; must be a positive number of seconds")
    if not budget_s > 0:
        raise ValueError(f"budget_s={budget_s}; must be > 0")
    if max_attempts is not None and max_attempts < 1:
        raise ValueError(f"max_attempts={max_attempts}; must be >= 1")
    st = _Stream(link, on_result, window=window, timeout_s=timeout_s,
                 max_attempts=max_attempts, budget_s=budget_s, expected_hash=expected_hash,
                 n_classes=n_classes, n_layers=n_layers, chunked=chunked)
    stats = link.stats
    t0 = link.clock()
    exhausted = False
    try:
        while abort is None or not abort.is_set():
            if not exhausted:
                exhausted = not st.refill(samples)
            else:
                st.refill(iter(()))  # parked samples still need their room
            if not st.inflight and exhausted:
                break
            items = link.poll()
            if items:
                st.last_rx = link.clock()
            for item in items:
                if isinstance(item, Frame):
                    st.on_frame(item)
                else:
                    st.on_bad_frame()
            st.check_time()
    except (TransportError, OSError) as exc:
        err = LinkError(f"{link.name}: link broke: {exc}")
        err.unfinished = st.unfinished()  # type: ignore[attr-defined]
        raise err from exc
    except Exception as exc:
        # whatever went wrong, the caller learns which samples are still open
        exc.unfinished = st.unfinished()  # type: ignore[attr-defined]
        raise
    finally:
        stats.elapsed_s += link.clock() - t0
        stats.rto_s = st.rtt.rto()
        stats.chunk_data_bytes = st.sizer.data if st.sizer is not None else None
    return stats
