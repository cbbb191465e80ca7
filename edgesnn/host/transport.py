"""Byte transports to a device: any pyserial URL, with a timeout on every read.

A transport has ``write(bytes) -> int``, ``read(size, timeout=None) -> bytes`` (returns what
arrived within the timeout, possibly nothing), ``reset_input_buffer()``, ``close()`` and
``url``. :class:`SerialTransport` wraps ``serial.serial_for_url`` (``/dev/tty*``,
``/dev/pts/*``, ``socket://``, ``rfc2217://``, ``loop://``); the in-memory
:class:`edgesnn.host.simdevice.SimDeviceTransport` and the fault-injecting
:class:`edgesnn.host.faults.FaultyTransport` follow the same shape.
"""

from __future__ import annotations

import logging
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
