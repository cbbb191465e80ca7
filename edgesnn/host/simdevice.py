"""A device emulator in Python that speaks the serial protocol, backed by the golden simulator.

It is what the firmware does (``firmware/PROTOCOL.md``, ``firmware/runtime/esnn_proto.c``), minus
the microcontroller, rule for rule and byte for byte (a test feeds both the same streams): one
request at a time, in order, replies carry the request's seq, bad frames are answered with ERROR
``ESNN_ERR_FRAME_CRC``, chunked requests are assembled and NAKed the same way, a reset sends an
unsolicited HELLO with seq 0. Used by tests, by the benchmarks and by ``edgesnn eval --device
sim``.

:class:`SimDevice` is byte-level (``feed(bytes) -> bytes``); :class:`SimDeviceTransport` wraps
it as an in-memory transport; :func:`serve_pty` runs it behind a pseudo-terminal so that the
real pyserial transport can be exercised.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

from edgesnn.graph.esg import header_hash
from edgesnn.graph.golden import simulate
from edgesnn.graph.ir import SpikeGraph
from edgesnn.host.protocol import (
    CHUNK_MAX,
    CRC_SIZE,
    ENCODINGS_ALL,
    FLAG_ANSWER,
    HEADER,
    HEADER_SIZE,
    MIN_BODY,
    SEQ_UNKNOWN,
    Chunk,
    CycleUnit,
    DeviceError,
    Hello,
    InferResult,
    Message,
    MsgType,
    Nak,
    ProtocolError,
    crc32,
    device_frame,
    status_value,
)

ERR_FRAME = status_value("ESNN_ERR_FRAME")
ERR_FRAME_CRC = status_value("ESNN_ERR_FRAME_CRC")
ERR_INPUT_SIZE = status_value("ESNN_ERR_INPUT_SIZE")
ERR_UNKNOWN_TYPE = status_value("ESNN_ERR_UNKNOWN_TYPE")
ERR_CHUNK = status_value("ESNN_ERR_CHUNK")


def cobs_prefix(raw: bytes) -> tuple[bytes, bool]:
    """What a byte-at-a-time COBS decoder has produced when the frame's 0x00 arrives: the
    decoded bytes, and whether the last block was complete (the frame is valid COBS)."""
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        code = raw[i]
        block = raw[i + 1:i + code]
        out += block
        i += code
        if i > n:
            return bytes(out), False
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out), True


def model_hash_of(esg_bytes: bytes) -> bytes:
    """The 16-byte model hash a device announces (bytes 32..47 of the ``.esg`` header)."""
    return header_hash(esg_bytes)


class SimDevice:
    """One emulated board running ``graph``; ``model_hash`` is what its HELLO announces.

    ``ns_per_op``: the emulated cycle counter reports ``base + ops * ns_per_op`` nanoseconds
    (cycle unit 2, as the host build does), so latency plots have something deterministic.
    """

    def __init__(self, graph: SpikeGraph, model_hash: bytes, *, board: str = "sim",
                 runtime_version: tuple[int, int, int] = (0, 1, 0),
                 ns_base: int = 2000, ns_per_op: float = 1.0, chunk_max: int = CHUNK_MAX,
                 encodings: int = ENCODINGS_ALL) -> None:
        self.graph = graph.validate()
        self.hello = Hello(board=board, model_hash=bytes(model_hash),
                           input_size=graph.input_size, n_classes=graph.n_classes,
                           steps=graph.steps, n_layers=len(graph.layers),
                           cycle_unit=CycleUnit.NANOSECONDS, clock_hz=0,
                           arena_bytes=graph.arena_bytes(), runtime_version=runtime_version,
                           encodings=encodings, chunk_max=chunk_max)
        self.ns_base = ns_base
        self.ns_per_op = ns_per_op
        self.requests = 0
        self.resets = 0
        self._clear()

    def _clear(self) -> None:
        self._partial = bytearray()  # wire bytes of the frame being received
        self._input = bytearray(self.graph.input_size)
        self._asm: tuple[int, int] | None = None  # (seq, total) being assembled
        self._got: set[int] = set()
        self._filled = 0
        self._done: tuple[int, InferResult] | None = None  # (seq, result) a POLL may re-send

    @classmethod
    def from_esg(cls, path: Path, **kw: object) -> SimDevice:
        from edgesnn.graph.esg import read_esg

        data = Path(path).read_bytes()
        return cls(read_esg(path), model_hash_of(data), **kw)  # type: ignore[arg-type]

    def reset(self) -> bytes:
        """Reboot: forget any partial frame or request and announce HELLO with seq 0."""
        self._clear()
        self.resets += 1
        return device_frame(MsgType.HELLO, 0, self.hello).encode()

    def feed(self, data: bytes) -> bytes:
        """Bytes from the host in; the device's reply bytes out (possibly empty)."""
        out = bytearray()
        parts = bytes(data).split(b"\x00")
        self._partial += parts[0]
        for part in parts[1:]:
            raw, self._partial = bytes(self._partial), bytearray(part)
            if raw:  # two delimiters in a row: an empty frame, ignored
                out += self._frame(raw)
        return bytes(out)

    def _reply(self, msg_type: MsgType, seq: int, msg: Message) -> bytes:
        return device_frame(msg_type, seq, msg).encode()

    def _error(self, seq: int, status: int, req_type: int) -> bytes:
        return self._reply(MsgType.ERROR, seq, DeviceError(status, req_type & 0xFF))

    def _frame(self, raw: bytes) -> bytes:
        """One frame's bytes (without its 0x00): the checks and answers of esnn_proto.c."""
        body, cobs_ok = cobs_prefix(raw)
        if len(body) >= HEADER_SIZE and body[0] == MsgType.INFER:
            self._asm = None  # its pixels stream into the input buffer: the assembly is gone
        if not cobs_ok:
            return self._error(SEQ_UNKNOWN, ERR_FRAME_CRC, 0)
        n = len(body)
        seq = int.from_bytes(body[2:4], "little") if n >= 4 else SEQ_UNKNOWN
        ftype = body[0] if n >= 1 else 0
        if n < MIN_BODY:
            return self._error(seq, ERR_FRAME_CRC, ftype)
        _, flags, _, length = HEADER.unpack_from(body)
        if (length != n - MIN_BODY or crc32(body[:-CRC_SIZE])
                != int.from_bytes(body[-CRC_SIZE:], "little")):
            return self._error(seq, ERR_FRAME_CRC, ftype)
        if flags & ~FLAG_ANSWER:
            return self._error(seq, ERR_FRAME, ftype)
        self.requests += 1
        payload = body[HEADER_SIZE:-CRC_SIZE]
        if ftype == MsgType.PING:
            return self._reply(MsgType.HELLO, seq, self.hello)
        if ftype == MsgType.INFER:
            if length != self.graph.input_size:
                return self._error(seq, ERR_INPUT_SIZE, ftype)
            self._input[:] = payload
            return self._run(seq)
        if ftype == MsgType.DATA:
            return self._data(seq, flags, payload)
        if ftype == MsgType.POLL:
            if self._done is not None and self._done[0] == seq:
                return self._reply(MsgType.RESULT, seq, self._done[1])
            return self._nak(seq)
        return self._error(seq, ERR_UNKNOWN_TYPE, ftype)

    def _run(self, seq: int) -> bytes:
        result = self.infer(bytes(self._input))
        self._done = (seq, result)
        return self._reply(MsgType.RESULT, seq, result)

    def _nak(self, seq: int) -> bytes:
        if self._asm is None or self._asm[0] != seq:
            return self._reply(MsgType.NAK, seq, Nak(0, 0))
        total = self._asm[1]
        missing = sum(1 << i for i in range(total) if i not in self._got)
        return self._reply(MsgType.NAK, seq, Nak(total, missing))

    def _data(self, seq: int, flags: int, payload: bytes) -> bytes:
        if len(payload) > self.hello.chunk_max:
            return self._error(seq, ERR_CHUNK, MsgType.DATA)
        try:
            chunk = Chunk.decode(payload)
        except ProtocolError:
            return self._error(seq, ERR_CHUNK, MsgType.DATA)
        if not self.hello.encodings >> chunk.enc & 1:
            return self._error(seq, ERR_CHUNK, MsgType.DATA)
        if self._done is not None and self._done[0] == seq:  # late or repeated chunk
            return self._reply(MsgType.RESULT, seq, self._done[1]) if flags & FLAG_ANSWER \
                else b""
        if self._asm != (seq, chunk.total):  # a new request replaces the old one
            self._asm = (seq, chunk.total)
            self._got = set()
            self._filled = 0
        if chunk.idx not in self._got:
            try:
                self._filled += chunk.apply(self._input)
            except ProtocolError:
                self._asm = None
                return self._error(seq, ERR_CHUNK, MsgType.DATA)
            self._got.add(chunk.idx)
        if len(self._got) == chunk.total:
            self._asm = None
            if self._filled != self.graph.input_size:
                return self._error(seq, ERR_INPUT_SIZE, MsgType.DATA)
            return self._run(seq)
        return self._nak(seq) if flags & FLAG_ANSWER else b""

    def infer(self, pixels: bytes) -> InferResult:
        px = np.frombuffer(pixels, dtype=np.uint8).reshape(1, -1)
        r = simulate(self.graph, px)
        ops = tuple(int(x) for x in r.ops[0])
        ns = int(self.ns_base + self.ns_per_op * sum(ops))
        return InferResult(prediction=int(r.pred[0]), cycles=ns,
                           input_spikes=int(r.input_spikes[0]),
                           counts=tuple(int(x) for x in r.counts[0]), ops=ops,
                           spikes=tuple(int(x) for x in r.spikes[0]))


class SimDeviceTransport:
    """In-memory transport to a :class:`SimDevice` (same interface as the serial transport).

    The device answers synchronously on :meth:`write`; :meth:`read` hands the queued reply
    bytes back in chunks of at most ``chunk`` bytes. :meth:`reset_device` reboots the device:
    reply bytes not yet read are lost (as a UART's FIFO would be) and a HELLO follows.
    """

    def __init__(self, device: SimDevice, *, chunk: int = 4096, boot_hello: bool = False) -> None:
        self.device = device
        self.chunk = chunk
        self._out: deque[bytes] = deque()
        self._lock = threading.Lock()
        self.timeout = 0.05
        self.closed = False
        if boot_hello:
            self._out.append(device.reset())

    @property
    def url(self) -> str:
        return f"sim://{self.device.hello.board}"

    def write(self, data: bytes) -> int:
        reply = self.device.feed(bytes(data))
        if reply:
            with self._lock:
                self._out.append(reply)
        return len(data)

    def read(self, size: int = 4096, timeout: float | None = None) -> bytes:
        with self._lock:
            if self._out:
                data = self._out.popleft()
                n = min(size, self.chunk)
                if len(data) > n:
                    self._out.appendleft(data[n:])
                    data = data[:n]
                return data
        wait = self.timeout if timeout is None else timeout
        if wait > 0:
            time.sleep(min(wait, 0.001))
        return b""

    def reset_device(self) -> None:
        with self._lock:
            self._out.clear()
            self._out.append(self.device.reset())

    def reset_input_buffer(self) -> None:
        with self._lock:
            self._out.clear()

    def close(self) -> None:
        self.closed = True


class PtyServer:
    """Runs a :class:`SimDevice` behind a pseudo-terminal; ``.url`` is the slave path."""

    def __init__(self, device: SimDevice) -> None:
        import tty

        self.device = device
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.url = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="simdevice-pty", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import select

        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                return
            reply = self.device.feed(data)
            if reply:
                os.write(self._master, reply)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> PtyServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_pty(device: SimDevice) -> PtyServer:
    return PtyServer(device)
