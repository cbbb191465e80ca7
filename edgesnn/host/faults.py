"""Fault-injecting transport wrappers, seeded, for proving the runner's accounting.

:class:`ByteFaultyTransport` acts on single bytes (flip, drop, duplicate, insert, bursts; per
direction), as a noisy UART does. :class:`FaultyTransport` acts on whole frames (the bytes up
to and including a 0x00 delimiter), in both directions unless ``directions`` says otherwise:

* ``corrupt``: probability that a frame has 1-3 of its bytes replaced by random values
  (a rate per frame; a per-byte rate of 1 % would spoil almost every 790-byte INFER frame);
* ``loss``: probability that a frame vanishes;
* ``dup``: probability that a frame is delivered twice;
* ``delay``: probability that a frame is held back ``delay_s`` seconds (so it may overtake or
  be overtaken: reordering);
* ``reset_every`` / ``reset_rate``: after every N host frames, or with this probability per
  host frame, the device is reset through ``reset_hook`` (a :class:`SimDeviceTransport` is
  reset by default): the frame in transit is lost, reply bytes not yet read are lost, and
  the device announces itself with an unsolicited HELLO.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from edgesnn.host.transport import Transport


@dataclass
class FaultStats:
    frames_tx: int = 0
    frames_rx: int = 0
    corrupted: int = 0
    lost: int = 0
    duplicated: int = 0
    delayed: int = 0
    resets: int = 0

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class FaultConfig:
    corrupt: float = 0.0
    loss: float = 0.0
    dup: float = 0.0
    delay: float = 0.0
    delay_s: float = 0.02
    reset_every: int = 0
    reset_rate: float = 0.0
    directions: str = "both"  # "both", "tx" (host->device only), "rx" (device->host only)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("corrupt", "loss", "dup", "delay", "reset_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fault rate {name}={value} outside [0, 1]")
        if self.directions not in ("both", "tx", "rx"):
            raise ValueError(f"directions={self.directions!r}; accepted: both, tx, rx")
        if self.reset_every < 0:
            raise ValueError(f"reset_every={self.reset_every} must be >= 0")


class FaultyTransport:
    """Wraps ``inner`` and injects the faults of ``config`` (see the module docstring)."""

    def __init__(self, inner: Transport, config: FaultConfig,
                 reset_hook: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.config = config
        self._clock = clock  # when delayed frames are due (a test may pass a virtual clock)
        self.stats = FaultStats()
        self._rng = random.Random(config.seed)
        self._tx_buf = bytearray()
        self._rx_buf = bytearray()
        self._tx_delayed: list[tuple[float, bytes]] = []
        self._rx_delayed: list[tuple[float, bytes]] = []
        if reset_hook is None:
            reset_hook = getattr(inner, "reset_device", None)
        self._reset_hook = reset_hook

    @property
    def url(self) -> str:
        return f"faulty+{getattr(self.inner, 'url', '?')}"

    # -- fault model --------------------------------------------------------------------
    def _mangle(self, frame: bytes, now: float, delayed: list[tuple[float, bytes]]) -> bytes:
        cfg, rng = self.config, self._rng
        if rng.random() < cfg.loss:
            self.stats.lost += 1
            return b""
        if rng.random() < cfg.corrupt and len(frame) > 1:
            buf = bytearray(frame)
            for _ in range(rng.randint(1, 3)):
                pos = rng.randrange(len(buf) - 1)  # keep the delimiter: corruption, not loss
                buf[pos] = (buf[pos] + rng.randint(1, 255)) & 0xFF
            frame = bytes(buf)
            self.stats.corrupted += 1
        copies = 2 if rng.random() < cfg.dup else 1
        if copies == 2:
            self.stats.duplicated += 1
        if rng.random() < cfg.delay:
            self.stats.delayed += 1
            delayed.append((now + cfg.delay_s, frame * copies))
            return b""
        return frame * copies

    @staticmethod
    def _release(delayed: list[tuple[float, bytes]], now: float) -> bytes:
        ready = [d for d in delayed if d[0] <= now]
        if not ready:
            return b""
        delayed[:] = [d for d in delayed if d[0] > now]
        return b"".join(d[1] for d in ready)

    @staticmethod
    def _split(buf: bytearray) -> list[bytes]:
        frames = []
        while True:
            idx = buf.find(b"\x00")
            if idx < 0:
                return frames
            frames.append(bytes(buf[:idx + 1]))
            del buf[:idx + 1]

    def _reset_due(self) -> bool:
        cfg = self.config
        if cfg.reset_every and self.stats.frames_tx % cfg.reset_every == 0:
            return True
        return cfg.reset_rate > 0 and self._rng.random() < cfg.reset_rate

    # -- transport interface -----------------------------------------------------------
    def write(self, data: bytes) -> int:
        now = self._clock()
        out = bytearray(self._release(self._tx_delayed, now))
        self._tx_buf += data
        faulty = self.config.directions in ("both", "tx")
        for frame in self._split(self._tx_buf):
            self.stats.frames_tx += 1
            if self._reset_hook is not None and self._reset_due():
                if out:
                    self.inner.write(bytes(out))
                    out.clear()
                self.stats.resets += 1
                self._rx_buf.clear()
                self._rx_delayed.clear()
                self._reset_hook()
                continue
            out += self._mangle(frame, now, self._tx_delayed) if faulty else frame
        if out:
            self.inner.write(bytes(out))
        return len(data)

    def read(self, size: int = 4096, timeout: float | None = None) -> bytes:
        now = self._clock()
        pending_tx = self._release(self._tx_delayed, now)
        if pending_tx:
            self.inner.write(pending_tx)
        data = self.inner.read(size, timeout)
        now = self._clock()
        out = bytearray(self._release(self._rx_delayed, now))
        if data:
            self._rx_buf += data
            faulty = self.config.directions in ("both", "rx")
            for frame in self._split(self._rx_buf):
                self.stats.frames_rx += 1
                out += self._mangle(frame, now, self._rx_delayed) if faulty else frame
        return bytes(out)

    def reset_input_buffer(self) -> None:
        self._rx_buf.clear()
        self._rx_delayed.clear()
        self.inner.reset_input_buffer()

    def close(self) -> None:
        self.inner.close()


# ------------------------------------------------------------------------------------------
# Byte-level faults: what a noisy UART does to single bytes


@dataclass(frozen=True)
class ByteFaults:
    """Per-byte fault rates for one direction of a link.

    Each byte independently is ``flip``-ped (XOR with a random non-zero value: a changed
    byte), ``drop``-ped, ``dup``-licated (delivered twice) or followed by an ``insert``-ed
    random byte (which may be 0x00, a false delimiter); with probability ``burst`` per byte a
    burst starts that replaces this and the next ``burst_len - 1`` bytes with random values.
    """

    flip: float = 0.0
    drop: float = 0.0
    dup: float = 0.0
    insert: float = 0.0
    burst: float = 0.0
    burst_len: int = 8

    def __post_init__(self) -> None:
        for name in ("flip", "drop", "dup", "insert", "burst"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"byte fault rate {name}={value} outside [0, 1]")
        if self.flip + self.drop + self.dup + self.insert + self.burst > 1.0:
            raise ValueError("byte fault rates add up to more than 1")
        if self.burst_len < 1:
            raise ValueError(f"burst_len={self.burst_len} must be >= 1")

    @property
    def any(self) -> bool:
        return self.flip + self.drop + self.dup + self.insert + self.burst > 0


@dataclass
class ByteFaultStats:
    bytes: int = 0
    flipped: int = 0
    dropped: int = 0
    duplicated: int = 0
    inserted: int = 0
    bursts: int = 0
    burst_bytes: int = 0

    def to_json(self) -> dict[str, int]:
        return asdict(self)


class ByteFaultStream:
    """Applies :class:`ByteFaults` to a byte stream, seeded. Two random streams drawn once
    per byte (the fault, the random value) make the result independent of how the stream
    is cut into calls: the same bytes and seed give the same faults."""

    def __init__(self, faults: ByteFaults, seed: int) -> None:
        import numpy as np

        self.faults = faults
        self.stats = ByteFaultStats()
        self._np = np
        self._events = np.random.default_rng([seed, 1])
        self._values = np.random.default_rng([seed, 2])
        self._burst_left = 0
        f = faults
        self._edges = np.cumsum([f.flip, f.drop, f.dup, f.insert, f.burst])

    def apply(self, data: bytes) -> bytes:
        np = self._np
        n = len(data)
        if n == 0:
            return b""
        self.stats.bytes += n
        u = self._events.random(n)
        # doubles, not integers(): numpy buffers the bits of small integers within a call,
        # which would make the values depend on how the stream is cut
        v = (self._values.random(n) * 255).astype(np.uint8) + np.uint8(1)
        kind = np.searchsorted(self._edges, u, side="right")  # 0 flip .. 4 burst, 5 none
        arr = np.frombuffer(data, dtype=np.uint8).copy()
        if self._burst_left or (kind == 4).any():  # rare: walk the bursts byte by byte
            for i in range(n):
                if self._burst_left == 0 and kind[i] == 4:
                    self._burst_left = self.faults.burst_len
                    self.stats.bursts += 1
                if self._burst_left:
                    self._burst_left -= 1
                    self.stats.burst_bytes += 1
                    arr[i] = v[i] - 1  # any value, 0x00 included
                    kind[i] = 6
        flip = kind == 0
        arr[flip] ^= v[flip]
        self.stats.flipped += int(flip.sum())
        counts = np.ones(n, dtype=np.int64)
        counts[kind == 1] = 0
        counts[kind == 2] = 2
        counts[kind == 3] = 2
        self.stats.dropped += int((kind == 1).sum())
        self.stats.duplicated += int((kind == 2).sum())
        self.stats.inserted += int((kind == 3).sum())
        out = np.repeat(arr, counts)
        ins = np.flatnonzero(kind == 3)
        if len(ins):  # the second copy of an "insert" byte becomes the random byte
            pos = np.cumsum(counts)[ins] - 1
            out[pos] = v[ins] - 1
        return out.tobytes()


class ByteFaultyTransport:
    """Wraps ``inner`` and applies byte faults: ``tx`` to host -> device bytes, ``rx`` to
    device -> host bytes, each direction with its own seeded stream."""

    def __init__(self, inner: Transport, tx: ByteFaults, rx: ByteFaults | None = None, *,
                 seed: int = 0) -> None:
        self.inner = inner
        self.tx = ByteFaultStream(tx, seed * 2)
        self.rx = ByteFaultStream(tx if rx is None else rx, seed * 2 + 1)

    @property
    def url(self) -> str:
        return f"bytefaults+{getattr(self.inner, 'url', '?')}"

    @property
    def stats(self) -> ByteFaultStatsPair:
        return ByteFaultStatsPair(self.tx.stats, self.rx.stats)

    def write(self, data: bytes) -> int:
        out = self.tx.apply(bytes(data)) if self.tx.faults.any else bytes(data)
        if out:
            self.inner.write(out)
        return len(data)

    def read(self, size: int = 4096, timeout: float | None = None) -> bytes:
        data = self.inner.read(size, timeout)
        return self.rx.apply(data) if data and self.rx.faults.any else data

    def reset_input_buffer(self) -> None:
        self.inner.reset_input_buffer()

    def close(self) -> None:
        self.inner.close()


@dataclass
class ByteFaultStatsPair:
    tx: ByteFaultStats
    rx: ByteFaultStats

    def to_json(self) -> dict[str, dict[str, int]]:
        return {"tx": self.tx.to_json(), "rx": self.rx.to_json()}
