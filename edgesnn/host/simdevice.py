"""A device emulator in Python that speaks the serial protocol, backed by the golden simulator.

It is what the firmware does (``firmware/PROTOCOL.md``), minus the microcontroller: one request
at a time, in order, replies carry the request's seq, bad frames are answered with ERROR
``ESNN_ERR_FRAME_CRC``, a reset sends an unsolicited HELLO with seq 0. Used by tests, by the
fault-injection benchmark and by ``edgesnn eval --device sim``.

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
    SEQ_UNKNOWN,
    CycleUnit,
    DeviceError,
    Frame,
    FrameDecoder,
    FrameError,
    Hello,
    InferResult,
    MsgType,
    device_frame,
    status_value,
)

# Fallback numbers only matter before firmware/runtime/esnn_status.def exists.
ERR_FRAME_CRC = status_value("ESNN_ERR_FRAME_CRC", default=0x20)
ERR_INPUT_SIZE = status_value("ESNN_ERR_INPUT_SIZE", default=0x21)
ERR_UNKNOWN_TYPE = status_value("ESNN_ERR_UNKNOWN_TYPE", default=0x22)


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
                 ns_base: int = 2000, ns_per_op: float = 1.0) -> None:
        self.graph = graph.validate()
        self.hello = Hello(board=board, model_hash=bytes(model_hash),
                           input_size=graph.input_size, n_classes=graph.n_classes,
                           steps=graph.steps, n_layers=len(graph.layers),
                           cycle_unit=CycleUnit.NANOSECONDS, clock_hz=0,
                           arena_bytes=graph.arena_bytes(), runtime_version=runtime_version)
        self.ns_base = ns_base
        self.ns_per_op = ns_per_op
        self._decoder = FrameDecoder()
        self.requests = 0
        self.resets = 0

    @classmethod
    def from_esg(cls, path: Path, **kw: object) -> SimDevice:
        from edgesnn.graph.esg import read_esg

        data = Path(path).read_bytes()
        return cls(read_esg(path), model_hash_of(data), **kw)  # type: ignore[arg-type]

    def reset(self) -> bytes:
        """Reboot: forget any partial frame and announce HELLO with seq 0."""
        self._decoder = FrameDecoder()
        self.resets += 1
        return device_frame(MsgType.HELLO, 0, self.hello).encode()

    def feed(self, data: bytes) -> bytes:
        """Bytes from the host in; the device's reply bytes out (possibly empty)."""
        out = bytearray()
        for item in self._decoder.feed(data):
            out += self._handle(item)
        return bytes(out)

    def _handle(self, item: Frame | FrameError) -> bytes:
        if isinstance(item, FrameError):
            seq = item.seq if item.seq is not None else SEQ_UNKNOWN
            return device_frame(MsgType.ERROR, seq, DeviceError(ERR_FRAME_CRC, 0)).encode()
        self.requests += 1
        if item.type == MsgType.PING:
            return device_frame(MsgType.HELLO, item.seq, self.hello).encode()
        if item.type == MsgType.INFER:
            if len(item.payload) != self.graph.input_size:
                err = DeviceError(ERR_INPUT_SIZE, item.type)
                return device_frame(MsgType.ERROR, item.seq, err).encode()
            return device_frame(MsgType.RESULT, item.seq, self.infer(item.payload)).encode()
        err = DeviceError(ERR_UNKNOWN_TYPE, item.type & 0xFF)
        return device_frame(MsgType.ERROR, item.seq, err).encode()

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
