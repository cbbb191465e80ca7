"""The host half of the edgesnn serial protocol, version 1 (``firmware/PROTOCOL.md``).

Framing: ``COBS(type:u8 flags:u8 seq:u16 len:u16 payload crc:u32) 0x00``, little-endian,
CRC-32 (zlib) over ``type .. payload``. Messages are dataclasses that encode and decode in
both directions, so the Python device emulator (:mod:`edgesnn.host.simdevice`) speaks the same
bytes as the C firmware. Status codes are parsed from ``firmware/runtime/esnn_status.def``
at import, so the host's list cannot drift from the device's.

No torch, no serial import here: pure bytes.
"""

from __future__ import annotations

import logging
import re
import struct
import zlib
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MAX_PAYLOAD = 1024  # ESNN_PROTO_MAX_PAYLOAD
HEADER = struct.Struct("<BBHH")  # type, flags, seq, len
HEADER_SIZE = HEADER.size  # 6
CRC_SIZE = 4
MIN_BODY = HEADER_SIZE + CRC_SIZE  # 10
MAX_BODY = MIN_BODY + MAX_PAYLOAD
# COBS adds one byte per 254 (rounded up) plus the leading code byte.
MAX_ENCODED = MAX_BODY + MAX_BODY // 254 + 2
FLAG_DEVICE = 0x01
SEQ_UNKNOWN = 0xFFFF
MODEL_HASH_SIZE = 16
MAX_BOARD_NAME = 32


class ProtocolError(ValueError):
    """Bytes that do not follow PROTOCOL.md; the message says which rule broke."""


class MsgType(IntEnum):
    PING = 0x01
    INFER = 0x02
    HELLO = 0x81
    RESULT = 0x82
    ERROR = 0x83


class CycleUnit(IntEnum):
    CYCLES = 0
    INSTRUCTIONS = 1
    NANOSECONDS = 2

    @property
    def label(self) -> str:
        return {
            CycleUnit.CYCLES: "cycles",
            CycleUnit.INSTRUCTIONS: "instructions (QEMU)",
            CycleUnit.NANOSECONDS: "ns (host)",
        }[self]


# ------------------------------------------------------------------------------------------
# Status codes, mirrored from the C runtime's one list.

_STATUS_LINE = re.compile(r'^\s*ESNN_STATUS\(\s*(\w+)\s*,\s*(-?(?:0x[0-9A-Fa-f]+|\d+))\s*,'
                          r'\s*"((?:[^"\\]|\\.)*)"\s*\)')


@dataclass(frozen=True)
class StatusCode:
    name: str
    value: int
    text: str


def parse_status_def(text: str) -> dict[int, StatusCode]:
    """Parse ``ESNN_STATUS(NAME, number, "text")`` lines; other lines are ignored.

    Names are stored as the C enum spells them: ``ESNN_<NAME>``.
    """
    codes: dict[int, StatusCode] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _STATUS_LINE.match(line)
        if not m:
            continue
        raw, value, desc = m.group(1), int(m.group(2), 0), m.group(3)
        name = raw if raw.startswith("ESNN_") else f"ESNN_{raw}"  # the C enum name
        if value in codes:
            raise ProtocolError(f"esnn_status.def line {lineno}: status {value} defined twice "
                                f"({codes[value].name} and {name})")
        codes[value] = StatusCode(name, value, desc)
    return codes


def _load_status_codes() -> dict[int, StatusCode]:
    try:
        from edgesnn._resources import firmware_dir

        path: Path = firmware_dir() / "runtime" / "esnn_status.def"
    except FileNotFoundError:
        return {}
    if not path.is_file():
        log.debug("no %s; status codes will be shown by number", path)
        return {}
    return parse_status_def(path.read_text(encoding="utf-8"))


STATUS_CODES: dict[int, StatusCode] = _load_status_codes()
STATUS_BY_NAME: dict[str, int] = {c.name: c.value for c in STATUS_CODES.values()}


def status_name(value: int) -> str:
    code = STATUS_CODES.get(value)
    return code.name if code else f"status {value}"


def status_value(name: str, default: int | None = None) -> int:
    """Numeric value of a status name (``ESNN_ERR_FRAME_CRC`` or ``ERR_FRAME_CRC``);
    ``default`` if unknown."""
    if not name.startswith("ESNN_"):
        name = f"ESNN_{name}"
    if name in STATUS_BY_NAME:
        return STATUS_BY_NAME[name]
    if default is None:
        raise ProtocolError(f"unknown status {name!r}; known: {', '.join(STATUS_BY_NAME)}")
    return default


# ------------------------------------------------------------------------------------------
# COBS and CRC


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: the result holds no 0x00 byte.

    Each zero-free run becomes blocks of at most 254 bytes, each led by its length + 1;
    a block shorter than 254 bytes stands for the run and the zero after it.
    """
    data = bytes(data)
    if len(data) >= 64:  # vectorised: each zero becomes the distance to the next one
        arr = np.frombuffer(data, dtype=np.uint8)
        zeros = np.flatnonzero(arr == 0)
        codes = np.diff(np.concatenate(([-1], zeros, [len(data)])))
        if int(codes.max()) <= 254:  # no zero-free run of 254+ bytes: no extra blocks
            enc = np.empty(len(data) + 1, dtype=np.uint8)
            enc[0] = codes[0]
            enc[1:] = arr
            enc[zeros + 1] = codes[1:]
            return enc.tobytes()
    out = bytearray()
    for chunk in data.split(b"\x00"):
        while len(chunk) >= 254:
            out.append(0xFF)
            out += chunk[:254]
            chunk = chunk[254:]
        out.append(len(chunk) + 1)
        out += chunk
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Inverse of :func:`cobs_encode`; raises :class:`ProtocolError` on malformed input."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise ProtocolError(f"COBS: zero byte at offset {i}")
        end = i + code
        if end > n:
            raise ProtocolError(f"COBS: block at offset {i} runs past the end ({code} > {n - i})")
        block = data[i + 1:end]
        if 0 in block:
            raise ProtocolError("COBS: zero byte inside a block")
        out += block
        i = end
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


# ------------------------------------------------------------------------------------------
# Frames


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes = b""
    flags: int = 0

    def body(self) -> bytes:
        if len(self.payload) > MAX_PAYLOAD:
            raise ProtocolError(f"payload of {len(self.payload)} bytes exceeds {MAX_PAYLOAD}")
        if not 0 <= self.seq <= 0xFFFF:
            raise ProtocolError(f"seq={self.seq} is not a u16")
        head = HEADER.pack(self.type, self.flags, self.seq, len(self.payload)) + self.payload
        return head + struct.pack("<I", crc32(head))

    def encode(self) -> bytes:
        """Wire bytes: COBS(body) followed by the 0x00 delimiter."""
        return cobs_encode(self.body()) + b"\x00"

    @property
    def from_device(self) -> bool:
        return bool(self.flags & FLAG_DEVICE)


@dataclass(frozen=True)
class FrameError:
    """A frame that was discarded; ``seq`` is set when it could be read (it may be wrong)."""

    reason: str
    seq: int | None = None
    raw_size: int = 0


def decode_body(body: bytes) -> Frame:
    if len(body) < MIN_BODY:
        raise ProtocolError(f"body of {len(body)} bytes is shorter than {MIN_BODY}")
    ftype, flags, seq, length = HEADER.unpack_from(body)
    if length != len(body) - MIN_BODY:
        raise ProtocolError(f"length field {length} != {len(body) - MIN_BODY} payload bytes")
    (crc,) = struct.unpack_from("<I", body, len(body) - CRC_SIZE)
    if crc != crc32(body[:-CRC_SIZE]):
        raise ProtocolError("CRC mismatch")
    return Frame(ftype, seq, bytes(body[HEADER_SIZE:-CRC_SIZE]), flags)


def decode_frame(wire: bytes) -> Frame:
    """Decode one frame (with or without its trailing 0x00)."""
    if wire.endswith(b"\x00"):
        wire = wire[:-1]
    return decode_body(cobs_decode(wire))


class FrameDecoder:
    """Streaming decoder: feed any chunks, get back whole frames and discarded-frame errors.

    Survives garbage: anything between two 0x00 delimiters that is not a valid frame becomes
    one :class:`FrameError` and decoding resumes at the next delimiter. An over-long run with
    no delimiter is dropped as soon as it cannot be a frame any more.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._overflow = False
        self.frames = 0
        self.errors = 0
        self.bytes_in = 0

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        out: list[Frame | FrameError] = []
        self.bytes_in += len(data)
        start = 0
        while True:
            idx = data.find(b"\x00", start)
            chunk = data[start:] if idx < 0 else data[start:idx]
            if not self._overflow:
                self._buf += chunk
                if len(self._buf) > MAX_ENCODED:
                    self._overflow = True
                    self._buf.clear()
            if idx < 0:
                break
            start = idx + 1
            if self._overflow:
                self._overflow = False
                self.errors += 1
                out.append(FrameError("frame longer than the maximum"))
                continue
            if not self._buf:
                continue  # idle delimiters
            raw = bytes(self._buf)
            self._buf.clear()
            out.append(self._decode(raw))
        return out

    def _decode(self, raw: bytes) -> Frame | FrameError:
        try:
            body = cobs_decode(raw)
        except ProtocolError as exc:
            self.errors += 1
            return FrameError(str(exc), None, len(raw))
        try:
            frame = decode_body(body)
        except ProtocolError as exc:
            self.errors += 1
            seq = struct.unpack_from("<H", body, 2)[0] if len(body) >= 4 else None
            return FrameError(str(exc), seq, len(raw))
        self.frames += 1
        return frame


# ------------------------------------------------------------------------------------------
# Messages


_HELLO_FIXED = struct.Struct("<B3BIIHHHBB16sB")  # 37 bytes


@dataclass(frozen=True)
class Hello:
    board: str
    model_hash: bytes
    input_size: int
    n_classes: int
    steps: int
    n_layers: int
    cycle_unit: CycleUnit = CycleUnit.CYCLES
    clock_hz: int = 0
    arena_bytes: int = 0
    runtime_version: tuple[int, int, int] = (0, 0, 0)
    protocol_version: int = PROTOCOL_VERSION

    def encode(self) -> bytes:
        name = self.board.encode("ascii")
        if len(name) > MAX_BOARD_NAME:
            raise ProtocolError(f"board name {self.board!r} longer than {MAX_BOARD_NAME}")
        if len(self.model_hash) != MODEL_HASH_SIZE:
            raise ProtocolError(f"model_hash must be {MODEL_HASH_SIZE} bytes")
        return _HELLO_FIXED.pack(self.protocol_version, *self.runtime_version, self.clock_hz,
                                 self.arena_bytes, self.input_size, self.n_classes, self.steps,
                                 self.n_layers, int(self.cycle_unit), self.model_hash,
                                 len(name)) + name

    @classmethod
    def decode(cls, payload: bytes) -> Hello:
        if len(payload) < _HELLO_FIXED.size:
            raise ProtocolError(f"HELLO payload of {len(payload)} bytes < {_HELLO_FIXED.size}")
        (ver, ma, mi, pa, clock, arena, n_in, n_cls, steps, n_layers, unit, mhash,
         nlen) = _HELLO_FIXED.unpack_from(payload)
        if ver != PROTOCOL_VERSION:
            raise ProtocolError(f"device speaks protocol version {ver}; this host speaks "
                                f"{PROTOCOL_VERSION}")
        if nlen > MAX_BOARD_NAME or len(payload) != _HELLO_FIXED.size + nlen:
            raise ProtocolError(f"HELLO board name length {nlen} inconsistent with payload "
                                f"size {len(payload)}")
        try:
            cu = CycleUnit(unit)
        except ValueError as exc:
            raise ProtocolError(f"HELLO cycle_unit={unit}; accepted 0, 1, 2") from exc
        board = payload[_HELLO_FIXED.size:].decode("ascii", errors="replace")
        return cls(board=board, model_hash=bytes(mhash), input_size=n_in, n_classes=n_cls,
                   steps=steps, n_layers=n_layers, cycle_unit=cu, clock_hz=clock,
                   arena_bytes=arena, runtime_version=(ma, mi, pa), protocol_version=ver)

    def to_json(self) -> dict:
        return {
            "board": self.board, "model_hash": self.model_hash.hex(),
            "input_size": self.input_size, "n_classes": self.n_classes, "steps": self.steps,
            "n_layers": self.n_layers, "cycle_unit": self.cycle_unit.name.lower(),
            "cycle_unit_label": self.cycle_unit.label, "clock_hz": self.clock_hz,
            "arena_bytes": self.arena_bytes,
            "runtime_version": ".".join(map(str, self.runtime_version)),
            "protocol_version": self.protocol_version,
        }


_RESULT_FIXED = struct.Struct("<BBHII")  # 12 bytes


@dataclass(frozen=True)
class InferResult:
    prediction: int
    cycles: int
    input_spikes: int
    counts: tuple[int, ...]
    ops: tuple[int, ...]
    spikes: tuple[int, ...] = field(default=())

    def encode(self) -> bytes:
        n_layers = len(self.ops)
        if len(self.spikes) != n_layers:
            raise ProtocolError("ops and spikes need one entry per layer")
        return (_RESULT_FIXED.pack(self.prediction, n_layers, len(self.counts),
                                   self.cycles & 0xFFFFFFFF, self.input_spikes & 0xFFFFFFFF)
                + struct.pack(f"<{len(self.counts)}H", *self.counts)
                + struct.pack(f"<{n_layers}I", *self.ops)
                + struct.pack(f"<{n_layers}I", *self.spikes))

    @classmethod
    def decode(cls, payload: bytes) -> InferResult:
        if len(payload) < _RESULT_FIXED.size:
            raise ProtocolError(f"RESULT payload of {len(payload)} bytes < {_RESULT_FIXED.size}")
        pred, n_layers, n_cls, cycles, in_spikes = _RESULT_FIXED.unpack_from(payload)
        want = _RESULT_FIXED.size + 2 * n_cls + 8 * n_layers
        if len(payload) != want:
            raise ProtocolError(f"RESULT payload of {len(payload)} bytes; {n_cls} classes and "
                                f"{n_layers} layers need {want}")
        off = _RESULT_FIXED.size
        counts = struct.unpack_from(f"<{n_cls}H", payload, off)
        off += 2 * n_cls
        ops = struct.unpack_from(f"<{n_layers}I", payload, off)
        off += 4 * n_layers
        spikes = struct.unpack_from(f"<{n_layers}I", payload, off)
        return cls(pred, cycles, in_spikes, tuple(counts), tuple(ops), tuple(spikes))


_ERROR = struct.Struct("<HBB")


@dataclass(frozen=True)
class DeviceError:
    status: int
    req_type: int = 0

    @property
    def name(self) -> str:
        return status_name(self.status)

    @property
    def text(self) -> str:
        code = STATUS_CODES.get(self.status)
        return code.text if code else ""

    def encode(self) -> bytes:
        return _ERROR.pack(self.status, self.req_type, 0)

    @classmethod
    def decode(cls, payload: bytes) -> DeviceError:
        if len(payload) != _ERROR.size:
            raise ProtocolError(f"ERROR payload of {len(payload)} bytes; expected {_ERROR.size}")
        status, req, _ = _ERROR.unpack(payload)
        return cls(status, req)


Message = Hello | InferResult | DeviceError


def decode_message(frame: Frame) -> Message | None:
    """The device message in ``frame`` (None for host-to-device types)."""
    if frame.type == MsgType.HELLO:
        return Hello.decode(frame.payload)
    if frame.type == MsgType.RESULT:
        return InferResult.decode(frame.payload)
    if frame.type == MsgType.ERROR:
        return DeviceError.decode(frame.payload)
    return None


def ping(seq: int) -> Frame:
    return Frame(MsgType.PING, seq)


def infer(seq: int, pixels: bytes) -> Frame:
    return Frame(MsgType.INFER, seq, bytes(pixels))


def device_frame(msg_type: MsgType, seq: int, msg: Message) -> Frame:
    return Frame(int(msg_type), seq, msg.encode(), FLAG_DEVICE)


def wire_size(payload_len: int) -> int:
    """Bytes on the wire for a frame carrying ``payload_len`` payload bytes."""
    return len(Frame(MsgType.INFER, 1, b"\x01" * payload_len).encode())
