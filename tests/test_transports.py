"""The baud-limited transport paces each direction like an 8N1 UART (checked on a simulated
clock, so nothing depends on the machine's speed) and changes no byte."""

from __future__ import annotations

import pytest

from edgesnn.host.transport import BaudLimitedTransport


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class _Echo:
    """A device that echoes every byte at once; waiting in read() advances the clock."""

    url = "echo://"

    def __init__(self, clock: _Clock) -> None:
        self.clock = clock
        self.got = bytearray()
        self.pending = bytearray()

    def write(self, data: bytes) -> int:
        self.got += data
        self.pending += data
        return len(data)

    def read(self, size: int = 4096, timeout: float | None = None) -> bytes:
        if self.pending:
            out = bytes(self.pending[:size])
            del self.pending[:size]
            return out
        self.clock.t += timeout or 0.0
        return b""

    def reset_input_buffer(self) -> None:
        self.pending.clear()

    def close(self) -> None:
        pass


def test_each_direction_carries_baud_over_ten_bytes_per_second() -> None:
    clock = _Clock()
    dev = _Echo(clock)
    link = BaudLimitedTransport(dev, 1000, clock=clock)  # 100 bytes/s: 10 ms a byte
    data = bytes(range(1, 201))
    link.write(data)
    assert len(dev.got) == 0  # the first byte is still on the line
    got = bytearray()
    while clock.t < 0.5:
        got += link.read(4096, 0.05)
    # after 0.5 s: 50 bytes have reached the device, and 49 have come back (one more byte
    # time for the echo of the 50th)
    assert len(dev.got) == 50 and dev.got == data[:50]
    assert 48 <= len(got) <= 50 and got == data[:len(got)]
    while clock.t < 2.5:
        got += link.read(4096, 0.05)
    assert bytes(got) == data and bytes(dev.got) == data
    assert link.url == "echo://@1000baud"


def test_rejects_nonsense_rates() -> None:
    with pytest.raises(ValueError):
        BaudLimitedTransport(_Echo(_Clock()), 0)


def test_a_full_line_blocks_the_writer_like_a_serial_driver() -> None:
    clock = _Clock()
    dev = _Echo(clock)
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock.t += s

    link = BaudLimitedTransport(dev, 1000, tx_buffer=64, clock=clock, sleep=sleep)
    data = bytes(range(1, 201))
    assert link.write(data) == 200
    # 200 bytes through a 64-byte buffer: the writer waited until all but the last 64 had
    # left, i.e. about 136 byte times of 10 ms
    assert 1.3 <= clock.t <= 1.4 and slept
    assert len(dev.got) in range(136, 138) and bytes(dev.got) == data[:len(dev.got)]
    while clock.t < 3.0:
        link.read(4096, 0.05)
    assert bytes(dev.got) == data
