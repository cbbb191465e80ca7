"""The host half of the edgesnn serial protocol, version 2 (``firmware/PROTOCOL.md``).

Framing: ``COBS(type:u8 flags:u8 seq:u16 len:u16 payload crc:u32) 0x00``, little-endian,
CRC-32 (zlib) over ``type .. payload``. Messages are dataclasses that encode and decode in
both directions, so the Python device emulator (:mod:`edgesnn.host.simdevice`) speaks the same
bytes as the C firmware. Status codes (with their "transient" flag) are parsed from
``firmware/runtime/esnn_status.def`` and the payload limits from ``esnn_proto.h`` at import,
so the host's numbers cannot drift from the device's.

Version 2 adds chunked requests (:class:`ChunkedRequest`): an input travels as DATA chunks of at
most the device's ``chunk_max`` payload bytes, each with its own CRC, encoded raw or as zero runs
(whichever is smaller for that sample); the device answers the chunk flagged ANSWER with RESULT
when it holds every chunk, else with a NAK listing the missing ones, which alone are re-sent.

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
from typing import Any

import numpy as np

from edgesnn._resources import proto_defines

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 2


_DEFINES = proto_defines()
if _DEFINES.get("VERSION") != PROTOCOL_VERSION:
    raise ImportError(f"esnn_proto.h says protocol version {_DEFINES.get('VERSION')}; "
                      f"edgesnn/host/protocol.py speaks {PROTOCOL_VERSION}")
MAX_PAYLOAD: int = _DEFINES["MAX_PAYLOAD"]  # largest INFER payload (input_size) and frame payload
CHUNK_MAX: int = _DEFINES["CHUNK_MAX"]  # default DATA payload limit of a device build
MAX_CHUNKS: int = _DEFINES["MAX_CHUNKS"]  # chunks per request (the NAK bitmap's width)
HEADER = struct.Struct("<BBHH")  # type, flags, seq, len
HEADER_SIZE = HEADER.size  # 6
CRC_SIZE = 4
MIN_BODY = HEADER_SIZE + CRC_SIZE  # 10
MAX_BODY = MIN_BODY + MAX_PAYLOAD
# COBS adds one byte per 254 (rounded up) plus the leading code byte.
MAX_ENCODED = MAX_BODY + MAX_BODY // 254 + 2
FLAG_DEVICE = 0x01
FLAG_ANSWER = 0x02  # host frames: answer this frame (RESULT, NAK or ERROR)
FLAG_ANN = 0x04  # host INFER/DATA/POLL: run the .esg's int8 ANN baseline (answer ANN_RESULT)
HELLO_ANN = 0x80  # HELLO ``encodings`` byte: the device runs ANN-flagged requests
SEQ_UNKNOWN = 0xFFFF
MODEL_HASH_SIZE = 16
MAX_BOARD_NAME = 32


class ProtocolError(ValueError):
    """Bytes that do not follow PROTOCOL.md; the message says which rule broke."""


class MsgType(IntEnum):
    PING = 0x01
    INFER = 0x02
    DATA = 0x03
    POLL = 0x04
    HELLO = 0x81
    RESULT = 0x82
    ERROR = 0x83
    NAK = 0x84
    ANN_RESULT = 0x85


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
_TRANSIENT_LINE = re.compile(r"^\s*ESNN_TRANSIENT\(\s*(\w+)\s*\)")


@dataclass(frozen=True)
class StatusCode:
    name: str
    value: int
    text: str
    transient: bool = False  # re-sending the same request can succeed (a link fault)


def parse_status_def(text: str) -> dict[int, StatusCode]:
    """Parse ``ESNN_STATUS(NAME, number, "text")`` and ``ESNN_TRANSIENT(NAME)`` lines; other
    lines are ignored. A status is transient (a link fault: re-sending can succeed) only when
    an ``ESNN_TRANSIENT`` line names it; a name no status has is an error.

    Names are stored as the C enum spells them: ``ESNN_<NAME>``.
    """
    codes: dict[int, StatusCode] = {}
    transient: list[tuple[int, str]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        t = _TRANSIENT_LINE.match(line)
        if t:
            raw = t.group(1)
            transient.append((lineno, raw if raw.startswith("ESNN_") else f"ESNN_{raw}"))
            continue
        m = _STATUS_LINE.match(line)
        if not m:
            continue
        raw, value, desc = m.group(1), int(m.group(2), 0), m.group(3)
        name = raw if raw.startswith("ESNN_") else f"ESNN_{raw}"  # the C enum name
        if value in codes:
            raise ProtocolError(f"esnn_status.def line {lineno}: status {value} defined twice "
                                f"({codes[value].name} and {name})")
        codes[value] = StatusCode(name, value, desc)
    by_name = {c.name: v for v, c in codes.items()}
    for lineno, name in transient:
        if name not in by_name:
            raise ProtocolError(f"esnn_status.def line {lineno}: ESNN_TRANSIENT({name}) names "
                                "no status")
        old = codes[by_name[name]]
        codes[old.value] = StatusCode(old.name, old.value, old.text, True)
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


def is_transient(value: int) -> bool:
    """Whether a device status is a link fault after which re-sending can succeed
    (``ESNN_TRANSIENT`` in esnn_status.def); unknown numbers are not."""
    code = STATUS_CODES.get(value)
    return bool(code and code.transient)


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


_HELLO_FIXED = struct.Struct("<B3BIIHHHBB16sBBB")  # 39 bytes


class Encoding(IntEnum):
    """How a DATA chunk carries its pixels (bit ``1 << value`` of HELLO's ``encodings``)."""

    RAW = 0  # the pixels themselves
    ZRL = 1  # zero-run tokens: zeros:u8 count:u8 then count literal pixels


ENCODINGS_ALL = (1 << Encoding.RAW) | (1 << Encoding.ZRL)


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
    encodings: int = ENCODINGS_ALL  # bit 1 << Encoding: input encodings the device decodes
    chunk_max: int = CHUNK_MAX  # largest DATA payload the device buffers (0: no DATA)

    def encode(self) -> bytes:
        name = self.board.encode("ascii")
        if len(name) > MAX_BOARD_NAME:
            raise ProtocolError(f"board name {self.board!r} longer than {MAX_BOARD_NAME}")
        if len(self.model_hash) != MODEL_HASH_SIZE:
            raise ProtocolError(f"model_hash must be {MODEL_HASH_SIZE} bytes")
        return _HELLO_FIXED.pack(self.protocol_version, *self.runtime_version, self.clock_hz,
                                 self.arena_bytes, self.input_size, self.n_classes, self.steps,
                                 self.n_layers, int(self.cycle_unit), self.model_hash,
                                 self.encodings, self.chunk_max, len(name)) + name

    @classmethod
    def decode(cls, payload: bytes) -> Hello:
        if len(payload) < 1 or payload[0] != PROTOCOL_VERSION:
            ver = payload[0] if payload else None
            raise ProtocolError(f"device speaks protocol version {ver}; this host speaks "
                                f"{PROTOCOL_VERSION}")
        if len(payload) < _HELLO_FIXED.size:
            raise ProtocolError(f"HELLO payload of {len(payload)} bytes < {_HELLO_FIXED.size}")
        (ver, ma, mi, pa, clock, arena, n_in, n_cls, steps, n_layers, unit, mhash, encodings,
         chunk_max, nlen) = _HELLO_FIXED.unpack_from(payload)
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
                   arena_bytes=arena, runtime_version=(ma, mi, pa), protocol_version=ver,
                   encodings=encodings, chunk_max=chunk_max)

    def to_json(self) -> dict:
        return {
            "board": self.board, "model_hash": self.model_hash.hex(),
            "input_size": self.input_size, "n_classes": self.n_classes, "steps": self.steps,
            "n_layers": self.n_layers, "cycle_unit": self.cycle_unit.name.lower(),
            "cycle_unit_label": self.cycle_unit.label, "clock_hz": self.clock_hz,
            "arena_bytes": self.arena_bytes,
            "runtime_version": ".".join(map(str, self.runtime_version)),
            "protocol_version": self.protocol_version,
            "encodings": [e.name.lower() for e in Encoding if self.encodings >> e & 1],
            "chunk_max": self.chunk_max, "ann": self.ann,
        }

    @property
    def ann(self) -> bool:
        """The device runs the int8 ANN baseline of its ``.esg`` (requests flagged ANN)."""
        return bool(self.encodings & HELLO_ANN)


_RESULT_FIXED = struct.Struct("<BBHII")  # 12 bytes


def unpack_result(payload: bytes, fixed: struct.Struct, kind: str, class_fmt: str,
                  ) -> tuple[tuple[Any, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Split a RESULT-shaped payload (RESULT, ANN_RESULT): the ``fixed`` header, whose fields 1
    and 2 are n_layers and n_classes, one ``class_fmt`` value per class, then two uint32 arrays
    of one entry per layer. Returns (header, per class, first array, second array); a payload
    of the wrong length raises ProtocolError naming ``kind``."""
    if len(payload) < fixed.size:
        raise ProtocolError(f"{kind} payload of {len(payload)} bytes < {fixed.size}")
    head = fixed.unpack_from(payload)
    n_layers, n_cls = head[1], head[2]
    per_class = struct.calcsize(f"<{class_fmt}")
    want = fixed.size + per_class * n_cls + 8 * n_layers
    if len(payload) != want:
        raise ProtocolError(f"{kind} payload of {len(payload)} bytes; {n_cls} classes and "
                            f"{n_layers} layers need {want}")
    off = fixed.size
    classes = struct.unpack_from(f"<{n_cls}{class_fmt}", payload, off)
    off += per_class * n_cls
    first = struct.unpack_from(f"<{n_layers}I", payload, off)
    second = struct.unpack_from(f"<{n_layers}I", payload, off + 4 * n_layers)
    return head, tuple(classes), tuple(first), tuple(second)


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
        head, counts, ops, spikes = unpack_result(payload, _RESULT_FIXED, "RESULT", "H")
        pred, _, _, cycles, in_spikes = head
        return cls(pred, cycles, in_spikes, counts, ops, spikes)


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


_NAK = struct.Struct("<BBQ")


@dataclass(frozen=True)
class Nak:
    """The device's answer to an ANSWER-flagged DATA or POLL it cannot answer with RESULT:
    ``total`` chunks of the request ``seq`` and the bitmap of those still ``missing`` (bit i =
    chunk i). ``total == 0``: the device holds nothing of that request; send every chunk."""

    total: int
    missing: int

    def indices(self) -> list[int]:
        return [i for i in range(self.total) if self.missing >> i & 1]

    def encode(self) -> bytes:
        return _NAK.pack(self.total, 0, self.missing)

    @classmethod
    def decode(cls, payload: bytes) -> Nak:
        if len(payload) != _NAK.size:
            raise ProtocolError(f"NAK payload of {len(payload)} bytes; expected {_NAK.size}")
        total, _, missing = _NAK.unpack(payload)
        if total > MAX_CHUNKS or missing >> total:
            raise ProtocolError(f"NAK with total={total} and missing={missing:#x}")
        return cls(total, missing)


Message = Hello | InferResult | DeviceError | Nak


def decode_message(frame: Frame) -> Message | None:
    """The device message in ``frame`` (None for host-to-device types)."""
    if frame.type == MsgType.HELLO:
        return Hello.decode(frame.payload)
    if frame.type == MsgType.RESULT:
        return InferResult.decode(frame.payload)
    if frame.type == MsgType.ERROR:
        return DeviceError.decode(frame.payload)
    if frame.type == MsgType.NAK:
        return Nak.decode(frame.payload)
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


# ------------------------------------------------------------------------------------------
# Chunked requests (version 2): DATA = idx:u8 total:u8 enc:u8 off:u16 data


_CHUNK = struct.Struct("<BBBH")
CHUNK_HEADER = _CHUNK.size  # 5
# wire bytes of a DATA frame beyond its data: chunk header, frame header + CRC, COBS code
# byte, delimiter (one more COBS byte per 254 is not counted)
CHUNK_OVERHEAD = CHUNK_HEADER + MIN_BODY + 2


@dataclass(frozen=True)
class Chunk:
    """One self-contained piece of an input: ``data`` decodes (by ``enc``) into the pixels
    from ``off`` on, so chunks can arrive, be lost and be re-sent in any order."""

    idx: int
    total: int
    enc: Encoding
    off: int
    data: bytes

    def encode(self) -> bytes:
        return _CHUNK.pack(self.idx, self.total, int(self.enc), self.off) + self.data

    @classmethod
    def decode(cls, payload: bytes) -> Chunk:
        if len(payload) < CHUNK_HEADER:
            raise ProtocolError(f"DATA payload of {len(payload)} bytes < {CHUNK_HEADER}")
        idx, total, enc, off = _CHUNK.unpack_from(payload)
        if not 0 < total <= MAX_CHUNKS or idx >= total:
            raise ProtocolError(f"DATA chunk {idx} of {total}; accepted 0 <= idx < total "
                                f"<= {MAX_CHUNKS}")
        try:
            e = Encoding(enc)
        except ValueError as exc:
            raise ProtocolError(f"DATA encoding {enc}; accepted 0 (raw), 1 (zero runs)") from exc
        return cls(idx, total, e, off, bytes(payload[CHUNK_HEADER:]))

    def apply(self, out: bytearray | memoryview) -> int:
        """Write this chunk's pixels into ``out``; returns how many it covers. Raises
        :class:`ProtocolError` (the device answers ``ESNN_ERR_CHUNK``) if they do not fit."""
        n, pos = len(out), self.off
        if self.enc == Encoding.RAW:
            end = pos + len(self.data)
            if end > n:
                raise ProtocolError(f"raw chunk covers pixels {pos}..{end - 1} of {n}")
            out[pos:end] = self.data
            return len(self.data)
        i, data = 0, self.data
        while i < len(data):
            if i + 2 > len(data):
                raise ProtocolError(f"zero-run chunk: token cut at byte {i}")
            zeros, count = data[i], data[i + 1]
            i += 2
            if i + count > len(data) or pos + zeros + count > n:
                raise ProtocolError(f"zero-run token ({zeros}, {count}) at pixel {pos} runs "
                                    f"past the data or the {n} pixels")
            out[pos:pos + zeros] = bytes(zeros)
            pos += zeros
            out[pos:pos + count] = data[i:i + count]
            pos += count
            i += count
        return pos - self.off


def _zrl_tokens(pixels: bytes) -> list[tuple[int, bytes]]:
    """``(zeros, literal)`` tokens, each field at most 255, that rebuild ``pixels``."""
    arr = np.frombuffer(pixels, dtype=np.uint8)
    nz = arr != 0
    edges = np.flatnonzero(np.diff(nz.astype(np.int8))) + 1
    bounds = np.concatenate(([0], edges, [len(arr)])).tolist()
    tokens: list[tuple[int, bytes]] = []
    zeros = 0
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if b <= a:
            continue
        if not nz[a]:
            zeros += b - a
            continue
        while zeros > 255:
            tokens.append((255, b""))
            zeros -= 255
        lit = pixels[a:b]
        for k in range(0, len(lit), 255):
            tokens.append((zeros, lit[k:k + 255]))
            zeros = 0
    while zeros > 0:
        tokens.append((min(zeros, 255), b""))
        zeros -= min(zeros, 255)
    return tokens


def _pack(pieces: list[tuple[int, bytes]], data_max: int) -> list[tuple[int, bytes]]:
    """Group zero-run tokens into chunks of at most ``data_max`` data bytes, splitting a
    literal where it does not fit; returns ``(first pixel, data)`` per chunk."""
    out: list[tuple[int, bytes]] = []
    cur, start, pos = bytearray(), 0, 0
    queue = list(reversed(pieces))
    while queue:
        zeros, lit = queue.pop()
        room = data_max - len(cur)
        if 2 + len(lit) <= room:
            cur += bytes((zeros, len(lit))) + lit
            pos += zeros + len(lit)
            continue
        if lit and room >= 3:
            k = room - 2
            cur += bytes((zeros, k)) + lit[:k]
            pos += zeros + k
            queue.append((0, lit[k:]))
        else:
            queue.append((zeros, lit))
        out.append((start, bytes(cur)))
        cur, start = bytearray(), pos
    if cur or not out:
        out.append((start, bytes(cur)))
    return out


def encode_chunks(pixels: bytes, chunk_max: int = CHUNK_MAX,
                  encodings: int = ENCODINGS_ALL) -> list[Chunk]:
    """Split one input into DATA chunks of at most ``chunk_max`` payload bytes, in the
    encoding (of those the device offers) that puts the fewest bytes on the wire."""
    pixels = bytes(pixels)
    data_max = chunk_max - CHUNK_HEADER
    if data_max < 3:
        raise ProtocolError(f"chunk_max={chunk_max} leaves no room for data "
                            f"(needs > {CHUNK_HEADER + 2})")
    options: list[tuple[int, Encoding, list[tuple[int, bytes]]]] = []
    if encodings >> Encoding.ZRL & 1:
        parts = _pack(_zrl_tokens(pixels), data_max)
        options.append((sum(len(d) for _, d in parts) + CHUNK_OVERHEAD * len(parts),
                        Encoding.ZRL, parts))
    if encodings >> Encoding.RAW & 1 or not options:
        parts = [(i, pixels[i:i + data_max]) for i in range(0, max(len(pixels), 1), data_max)]
        options.append((len(pixels) + CHUNK_OVERHEAD * len(parts), Encoding.RAW, parts))
    options = [o for o in options if len(o[2]) <= MAX_CHUNKS]
    if not options:
        raise ProtocolError(f"{len(pixels)} pixels need more than {MAX_CHUNKS} chunks of "
                            f"{chunk_max} bytes")
    _, enc, parts = min(options, key=lambda o: (o[0], o[1]))
    return [Chunk(i, len(parts), enc, off, data) for i, (off, data) in enumerate(parts)]


def decode_chunks(chunks: list[Chunk], input_size: int) -> bytes:
    """The pixels a complete set of chunks stands for (what the device assembles)."""
    out = bytearray(input_size)
    covered = sum(c.apply(out) for c in chunks)
    if covered != input_size:
        raise ProtocolError(f"chunks cover {covered} pixels; the input has {input_size}")
    return bytes(out)


class ChunkedRequest:
    """One input as DATA frames under one ``seq``; pure (no I/O): it says what to send.

    :meth:`frames` gives the chunks to send, the last one flagged ANSWER; :meth:`on_nak` the
    ones a NAK says are missing (all of them after a ``total == 0`` NAK); :meth:`poll` a POLL
    for when neither RESULT nor NAK came back.
    """

    def __init__(self, seq: int, pixels: bytes, *, chunk_max: int = CHUNK_MAX,
                 encodings: int = ENCODINGS_ALL) -> None:
        self.seq = seq
        self.chunks = encode_chunks(pixels, chunk_max, encodings)
        self.payload_bytes = sum(len(c.data) + CHUNK_HEADER for c in self.chunks)

    @property
    def encoding(self) -> Encoding:
        return self.chunks[0].enc

    def frames(self, indices: list[int] | None = None) -> list[Frame]:
        idx = list(range(len(self.chunks))) if indices is None else list(indices)
        return [Frame(MsgType.DATA, self.seq, self.chunks[i].encode(),
                      FLAG_ANSWER if k == len(idx) - 1 else 0) for k, i in enumerate(idx)]

    def on_nak(self, nak: Nak) -> list[Frame]:
        if nak.total == 0:
            return self.frames()
        if nak.total != len(self.chunks):
            raise ProtocolError(f"NAK for {nak.total} chunks; request {self.seq} has "
                                f"{len(self.chunks)}")
        missing = nak.indices()
        return self.frames(missing) if missing else [self.poll()]

    def poll(self) -> Frame:
        return Frame(MsgType.POLL, self.seq, b"", FLAG_ANSWER)
