"""Byte transports to a device: any pyserial URL, with a timeout on every read.

A transport has ``write(bytes) -> int``, ``read(size, timeout=None) -> bytes`` (returns what
arrived within the timeout, possibly nothing), ``reset_input_buffer()``, ``close()`` and
``url``. :class:`SerialTransport` wraps ``serial.serial_for_url`` (``/dev/tty*``,
``/dev/pts/*``, ``socket://``, ``rfc2217://``, ``loop://``); the in-memory
:class:`edgesnn.host.simdevice.SimDeviceTransport` and the fault-injecting
:class:`edgesnn.host.faults.FaultyTransport` follow the same shape.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

URL_SCHEMES = ("socket://", "rfc2217://", "loop://", "spy://", "alt://", "hwgrep://")


class TransportError(OSError):
    """The link to the device could not be opened or broke; names the URL."""


class Transport(Protocol):
    url: str

    def write(self, data: bytes) -> int: ...

    def read(self, size: int = 4096, timeout: float | None = None) -> bytes: ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


def is_url(spec: str) -> bool:
    """Whether ``spec`` names a link (pyserial URL or device path) rather than a profile."""
    return spec.startswith(URL_SCHEMES) or spec.startswith("/dev/") or "://" in spec


class SerialTransport:
    """A pyserial port opened from a URL; ``timeout`` is the default read timeout (s)."""

    def __init__(self, url: str, *, baudrate: int = 115200, timeout: float = 0.05,
                 write_timeout: float = 5.0) -> None:
        import serial

        self.url = url
        self.timeout = timeout
        try:
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout,
                                               write_timeout=write_timeout)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise TransportError(f"cannot open {url!r}: {exc}") from exc
        self._serial = serial

    def write(self, data: bytes) -> int:
        try:
            # no flush(): on a pseudo-terminal it is tcdrain(), which waits until the device
            # has read every byte and so serialises the window of requests in flight
            n = self._port.write(data)
        except (self._serial.SerialException, OSError) as exc:
            raise TransportError(f"write to {self.url} failed: {exc}") from exc
        return int(n or 0)

    def read(self, size: int = 4096, timeout: float | None = None) -> bytes:
        try:
            if timeout is not None and timeout != self._port.timeout:
                self._port.timeout = timeout
            waiting = self._port.in_waiting
            if waiting:
                return bytes(self._port.read(min(max(waiting, 1), size)))
            first = self._port.read(1)
            if not first:
                return b""
            more = self._port.in_waiting
            return bytes(first) + (bytes(self._port.read(min(more, size - 1))) if more else b"")
        except (self._serial.SerialException, OSError) as exc:
            raise TransportError(f"read from {self.url} failed: {exc}") from exc

    def reset_input_buffer(self) -> None:
        try:
            self._port.reset_input_buffer()
        except (self._serial.SerialException, OSError, NotImplementedError):
            pass

    def close(self) -> None:
        try:
            self._port.close()
        except Exception:  # noqa: BLE001 - closing a broken port must not raise
            log.debug("closing %s failed", self.url, exc_info=True)


def open_transport(url: str, *, baudrate: int = 115200, timeout: float = 0.05) -> SerialTransport:
    """Open ``url`` (any pyserial URL or a device path)."""
    return SerialTransport(url, baudrate=baudrate, timeout=timeout)


class BaudLimitedTransport:
    """Wraps ``inner`` (a pseudo-terminal, socket or in-memory device) and paces both
    directions like a UART at ``baud`` with ``bits_per_byte`` bits per byte (10 for 8N1):
    host bytes reach the device no faster than the line carries them, device bytes reach the
    host no sooner than their last bit would have. The directions are independent (full
    duplex). A write blocks while more than ``tx_buffer`` bytes wait for the line, as an
    operating system's serial driver does. ``clock`` and ``sleep`` are for tests."""

    def __init__(self, inner: Transport, baud: int, *, bits_per_byte: int = 10,
                 tx_buffer: int = 4096, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if baud <= 0 or bits_per_byte <= 0 or tx_buffer <= 0:
            raise ValueError(f"baud={baud}, bits_per_byte={bits_per_byte}, "
                             f"tx_buffer={tx_buffer}: must be > 0")
        self.inner = inner
        self.tx_buffer = tx_buffer
        self._sleep = sleep
        self.baud = baud
        self.byte_s = bits_per_byte / baud
        self._clock = clock
        self._tx = bytearray()  # host bytes not yet at the far end
        self._tx_t = 0.0  # when the first of them has been fully sent
        self._rx = bytearray()  # device bytes not yet delivered
        self._rx_t: list[float] = []  # when each of them is delivered
        self._rx_free = 0.0  # when the device->host line is free

    @property
    def url(self) -> str:
        return f"{getattr(self.inner, 'url', '?')}@{self.baud}baud"

    def _pump_tx(self, now: float) -> None:
        if not self._tx or now < self._tx_t:
            return
        n = min(len(self._tx), int((now - self._tx_t) / self.byte_s) + 1)
        self.inner.write(bytes(self._tx[:n]))
        del self._tx[:n]
        self._tx_t += n * self.byte_s

    def write(self, data: bytes) -> int:
        data = bytes(data)
        for k in range(0, len(data), self.tx_buffer):
            part = data[k:k + self.tx_buffer]
            while True:
                now = self._clock()
                self._pump_tx(now)
                over = len(self._tx) + len(part) - self.tx_buffer
                if over <= 0:
                    break
                self._sleep(max(self._tx_t - now, 0.0) + (over - 1) * self.byte_s)
            if not self._tx:
                self._tx_t = max(self._tx_t, now) + self.byte_s
            self._tx += part
            self._pump_tx(now)
        return len(data)

    def read(self, size: int = 4096, timeout: float | None = None) -> bytes:
        deadline = self._clock() + (0.05 if timeout is None else timeout)
        while True:
            now = self._clock()
            self._pump_tx(now)
            ready = min(bisect.bisect_right(self._rx_t, now), size)
            if ready:
                out = bytes(self._rx[:ready])
                del self._rx[:ready]
                del self._rx_t[:ready]
                return out
            if now >= deadline:
                return b""
            wake = deadline
            if self._tx:
                wake = min(wake, self._tx_t)
            if self._rx_t:
                wake = min(wake, self._rx_t[0])
            data = self.inner.read(4096, max(0.0, min(wake - now, 0.002)))
            if data:
                t = max(self._rx_free, self._clock())
                self._rx_t.extend(t + self.byte_s * (k + 1) for k in range(len(data)))
                self._rx_free = self._rx_t[-1]
                self._rx += data

    def reset_input_buffer(self) -> None:
        self._rx.clear()
        self._rx_t.clear()
        self.inner.reset_input_buffer()

    def close(self) -> None:
        self.inner.close()
