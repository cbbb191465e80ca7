"""The host half of firmware/PROTOCOL.md: COBS, CRC, frames, messages, streaming decoder."""

from __future__ import annotations

import random
import re
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesnn.host import protocol as p


@given(st.binary(max_size=1100))
@settings(max_examples=300, deadline=None)
def test_cobs_round_trip_and_no_zero(data: bytes) -> None:
    enc = p.cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 1
    assert p.cobs_decode(enc) == data


def test_cobs_known_vectors() -> None:
    # from the COBS paper / Wikipedia examples
    assert p.cobs_encode(b"\x00") == b"\x01\x01"
    assert p.cobs_encode(b"\x00\x00") == b"\x01\x01\x01"
    assert p.cobs_encode(b"\x11\x22\x00\x33") == b"\x03\x11\x22\x02\x33"
    assert p.cobs_encode(b"\x11\x00\x00\x00") == b"\x02\x11\x01\x01\x01"
    assert p.cobs_encode(bytes(range(1, 255))) == b"\xff" + bytes(range(1, 255)) + b"\x01"
    with pytest.raises(p.ProtocolError):
        p.cobs_decode(b"\x05\x11")


@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=p.MAX_PAYLOAD))
@settings(max_examples=200, deadline=None)
def test_frame_round_trip(ftype: int, seq: int, payload: bytes) -> None:
    frame = p.Frame(ftype, seq, payload, p.FLAG_DEVICE)
    wire = frame.encode()
    assert wire.endswith(b"\x00") and 0 not in wire[:-1]
    assert p.decode_frame(wire) == frame
    body = frame.body()
    assert struct.unpack_from("<BBHH", body) == (ftype, p.FLAG_DEVICE, seq, len(payload))
    assert struct.unpack_from("<I", body, len(body) - 4)[0] == zlib.crc32(body[:-4])


def test_body_layout_is_little_endian_per_spec() -> None:
    body = p.Frame(p.MsgType.INFER, 0x1234, b"\xaa\xbb").body()
    assert body[:6] == bytes([0x02, 0x00, 0x34, 0x12, 0x02, 0x00])
    assert body[6:8] == b"\xaa\xbb"


@given(st.binary(min_size=1, max_size=64), st.integers(0, 10_000))
@settings(max_examples=300, deadline=None)
def test_any_corruption_is_rejected(payload: bytes, where: int) -> None:
    wire = bytearray(p.Frame(p.MsgType.RESULT, 7, payload, 1).encode())
    pos = where % (len(wire) - 1)
    wire[pos] ^= 1 + where % 255
    dec = p.FrameDecoder()
    items = dec.feed(bytes(wire))
    # the mangled frame never decodes as a frame (CRC-32 catches every 1-byte error)
    assert not any(isinstance(i, p.Frame) for i in items)


def test_decoder_survives_garbage_and_resynchronises() -> None:
    rng = random.Random(3)
    frames = [p.Frame(p.MsgType.RESULT, i, bytes(rng.randrange(256) for _ in range(i * 7)), 1)
              for i in range(1, 40)]
    stream = bytearray()
    for f in frames:
        stream += bytes(rng.randrange(1, 256) for _ in range(rng.randrange(0, 30))) + b"\x00"
        stream += f.encode()
    stream += b"\xff" * 5000 + b"\x00"  # an over-long run
    stream += frames[0].encode()
    dec = p.FrameDecoder()
    got: list = []
    pos = 0
    while pos < len(stream):  # arbitrary chunking
        n = rng.randrange(1, 300)
        got += dec.feed(bytes(stream[pos:pos + n]))
        pos += n
    ok = [g for g in got if isinstance(g, p.Frame)]
    assert ok == frames + [frames[0]]
    assert any(isinstance(g, p.FrameError) and "longer" in g.reason for g in got)


def test_length_field_mismatch_rejected_with_seq() -> None:
    body = bytearray(p.Frame(p.MsgType.INFER, 0x0BCD, b"abc").body())
    body[4] = 5  # claims 5 payload bytes
    body[-4:] = struct.pack("<I", zlib.crc32(bytes(body[:-4])))
    items = p.FrameDecoder().feed(p.cobs_encode(bytes(body)) + b"\x00")
    assert len(items) == 1 and isinstance(items[0], p.FrameError)
    assert items[0].seq == 0x0BCD and "length" in items[0].reason


def test_messages_round_trip() -> None:
    hello = p.Hello(board="lm3s6965evb", model_hash=bytes(range(16)), input_size=784,
                    n_classes=10, steps=16, n_layers=2, cycle_unit=p.CycleUnit.INSTRUCTIONS,
                    clock_hz=50_000_000, arena_bytes=4096, runtime_version=(1, 2, 3))
    raw = hello.encode()
    assert len(raw) == 39 + len("lm3s6965evb") and raw[0] == 2 and raw[19] == 1
    assert raw[20:36] == bytes(range(16))
    assert raw[36] == p.ENCODINGS_ALL and raw[37] == p.CHUNK_MAX and raw[38] == 11
    assert p.Hello.decode(raw) == hello
    res = p.InferResult(prediction=7, cycles=123456, input_spikes=999,
                        counts=tuple(range(10)), ops=(5000, 300), spikes=(40, 9))
    raw = res.encode()
    assert len(raw) == 12 + 2 * 10 + 8 * 2
    assert p.InferResult.decode(raw) == res
    err = p.DeviceError(p.status_value("ESNN_ERR_FRAME_CRC"), 2)
    assert p.DeviceError.decode(err.encode()) == err
    assert err.name == "ESNN_ERR_FRAME_CRC"
    with pytest.raises(p.ProtocolError):
        p.InferResult.decode(raw[:-1])
    with pytest.raises(p.ProtocolError):
        p.Hello.decode(b"\x01" + p.Hello("b", bytes(16), 784, 10, 8, 2).encode()[1:])


def test_status_codes_mirror_the_c_list(repo_root) -> None:
    text = (repo_root / "firmware" / "runtime" / "esnn_status.def").read_text()
    c_list = re.findall(r"^ESNN_STATUS\((\w+),\s*(\d+),", text, re.M)
    transient = re.findall(r"^ESNN_TRANSIENT\((\w+)\)", text, re.M)
    assert {f"ESNN_{n}" for n in transient} == {c.name for c in p.STATUS_CODES.values()
                                                 if c.transient}
    assert c_list, "esnn_status.def has no ESNN_STATUS lines"
    assert {f"ESNN_{n}": int(v) for n, v in c_list} == p.STATUS_BY_NAME
    for name in ("ESNN_OK", "ESNN_ERR_FRAME_CRC", "ESNN_ERR_INPUT_SIZE",
                 "ESNN_ERR_UNKNOWN_TYPE"):
        assert name in p.STATUS_BY_NAME
    # names used by PROTOCOL.md exist in the list
    proto = (repo_root / "firmware" / "PROTOCOL.md").read_text()
    for name in set(re.findall(r"ESNN_ERR_\w+", proto)):
        assert name in p.STATUS_BY_NAME, name


def test_wire_size_matches_efficiency_bound() -> None:
    # 784-byte INFER: 10 bytes of header+CRC, 4 COBS code bytes, 1 delimiter
    assert p.wire_size(784) == 784 + 10 + 4 + 1


def _reference_cobs(data: bytes) -> bytes:
    """Byte-at-a-time COBS, straight from Cheshire & Baker (1999)."""
    out, code_pos, code = bytearray([0]), 0, 1
    for byte in data:
        if byte == 0:
            out[code_pos] = code
            code_pos, code = len(out), 1
            out.append(0)
            continue
        out.append(byte)
        code += 1
        if code == 0xFF:
            out[code_pos] = code
            code_pos, code = len(out), 1
            out.append(0)
    out[code_pos] = code
    return bytes(out)


@given(st.lists(st.sampled_from([0, 0, 0, 1, 7, 255]), max_size=1100),
       st.integers(0, 300), st.integers(0, 1100))
@settings(max_examples=300, deadline=None)
def test_cobs_matches_reference_on_sparse_data(values, run, at) -> None:
    # MNIST-like data (many zeros) takes the vectorised path; a long zero-free run the loop
    data = bytes(values)
    data = data[:at] + b"\x09" * run + data[at:]
    assert p.cobs_encode(data) == _reference_cobs(data)
