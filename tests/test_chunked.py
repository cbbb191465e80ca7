"""Protocol version 2: chunked, compact input. The encoders and the host-side request state
machine in Python, the Python device emulator, and the C firmware (host build, driven over
stdio) must agree byte for byte on every answer, for clean, chunk-lossy and mangled streams.
"""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesnn.build import build_project
from edgesnn.cli import main as cli_main
from edgesnn.graph import esg
from edgesnn.graph.esg import header_hash
from edgesnn.graph.synth import random_graph
from edgesnn.host import protocol as P
from edgesnn.host.simdevice import SimDevice, cobs_prefix
from tests.test_firmware_host import mnist_images

T = P.MsgType


def _sparse(draw_bytes: bytes, zero_frac: int) -> bytes:
    return bytes(0 if (b % 10) < zero_frac else b for b in draw_bytes)


@given(st.binary(min_size=1, max_size=1024), st.integers(0, 10), st.integers(8, 255))
@settings(max_examples=300, deadline=None)
def test_chunks_rebuild_the_input_exactly(data: bytes, zero_frac: int, chunk_max: int) -> None:
    px = _sparse(data, zero_frac)
    try:
        chunks = P.encode_chunks(px, chunk_max)
    except P.ProtocolError:
        assert len(px) / (chunk_max - P.CHUNK_HEADER) > P.MAX_CHUNKS / 2  # only when too many
        return
    assert 1 <= len(chunks) <= P.MAX_CHUNKS
    assert all(len(c.encode()) <= chunk_max for c in chunks)
    assert [c.idx for c in chunks] == list(range(len(chunks)))
    assert P.decode_chunks(chunks, len(px)) == px
    # any order, as chunks may be re-sent
    assert P.decode_chunks(list(reversed(chunks)), len(px)) == px
    for c in chunks:
        assert P.Chunk.decode(c.encode()) == c


def test_encoding_is_chosen_per_sample_by_size() -> None:
    sparse = bytes(700) + bytes(range(1, 85))
    dense = bytes(range(1, 256)) * 3 + bytes(range(1, 20))
    assert P.encode_chunks(sparse)[0].enc == P.Encoding.ZRL
    assert P.encode_chunks(dense)[0].enc == P.Encoding.RAW
    # a device offering raw pixels only gets raw pixels
    assert P.encode_chunks(sparse, encodings=1 << P.Encoding.RAW)[0].enc == P.Encoding.RAW
    # zero-run tokens: 700 zeros -> (255,0) (255,0) (190, 84 literals)
    z = P.encode_chunks(sparse, 255)
    assert len(z) == 1 and z[0].data[:6] == bytes([255, 0, 255, 0, 190, 84])
    assert len(z[0].data) == 6 + 84


def test_zrl_rejects_overruns_and_cut_tokens() -> None:
    out = bytearray(10)
    with pytest.raises(P.ProtocolError):
        P.Chunk(0, 1, P.Encoding.ZRL, 0, bytes([8, 3, 1, 2, 3])).apply(out)  # 11 pixels
    with pytest.raises(P.ProtocolError):
        P.Chunk(0, 1, P.Encoding.ZRL, 0, bytes([2, 3, 1])).apply(out)  # literal cut
    with pytest.raises(P.ProtocolError):
        P.Chunk(0, 1, P.Encoding.ZRL, 0, bytes([2])).apply(out)  # token cut
    with pytest.raises(P.ProtocolError):
        P.Chunk(0, 1, P.Encoding.RAW, 8, bytes(3)).apply(out)
    assert P.Chunk(0, 1, P.Encoding.ZRL, 4, bytes([2, 2, 9, 9])).apply(out) == 4
    assert bytes(out) == bytes([0, 0, 0, 0, 0, 0, 9, 9, 0, 0])
    with pytest.raises(P.ProtocolError):
        P.Chunk.decode(bytes([3, 3, 0, 0, 0]))  # idx >= total
    with pytest.raises(P.ProtocolError):
        P.Chunk.decode(bytes([0, 1, 7, 0, 0]))  # unknown encoding


def test_nak_layout_and_request_state_machine() -> None:
    nak = P.Nak(5, 0b10110)
    raw = nak.encode()
    assert raw == bytes([5, 0]) + struct.pack("<Q", 0b10110)
    assert P.Nak.decode(raw) == nak and nak.indices() == [1, 2, 4]
    with pytest.raises(P.ProtocolError):
        P.Nak.decode(bytes([2, 0]) + struct.pack("<Q", 0b100))  # bit beyond total
    req = P.ChunkedRequest(9, bytes(range(256)) * 2, chunk_max=64)
    frames = req.frames()
    assert len(frames) == len(req.chunks) == 9
    assert [f.flags for f in frames] == [0] * 8 + [P.FLAG_ANSWER]
    again = req.on_nak(nak.__class__(9, 0b100000011))
    assert [P.Chunk.decode(f.payload).idx for f in again] == [0, 1, 8]
    assert again[-1].flags == P.FLAG_ANSWER and again[0].flags == 0
    assert len(req.on_nak(P.Nak(0, 0))) == 9
    assert req.on_nak(P.Nak(9, 0)) == [req.poll()]
    with pytest.raises(P.ProtocolError):
        req.on_nak(P.Nak(4, 1))


def test_limits_come_from_esnn_proto_h(repo_root: Path) -> None:
    text = (repo_root / "firmware" / "runtime" / "esnn_proto.h").read_text()
    assert f"#define ESNN_PROTO_MAX_PAYLOAD {P.MAX_PAYLOAD}\n" in text
    assert f"#define ESNN_PROTO_CHUNK_MAX {P.CHUNK_MAX}\n" in text
    assert f"#define ESNN_PROTO_VERSION {P.PROTOCOL_VERSION}\n" in text
    from edgesnn.export import c as export_c

    assert export_c.PROTO_MAX_PAYLOAD == P.MAX_PAYLOAD == 1024


def test_transient_flag_lives_in_the_status_list() -> None:
    transient = {c.name for c in P.STATUS_CODES.values() if c.transient}
    assert transient == {"ESNN_ERR_FRAME_CRC"}
    for name in ("ESNN_ERR_HEADER_CRC", "ESNN_ERR_TABLE_CRC", "ESNN_ERR_SECTION_CRC",
                 "ESNN_ERR_CHUNK", "ESNN_ERR_INPUT_SIZE"):
        assert not P.is_transient(P.status_value(name)), name
    codes = P.parse_status_def('ESNN_STATUS(OK, 0, "ok")\nESNN_STATUS(ERR_X, 1, "x")\n'
                               "ESNN_TRANSIENT(ERR_X)\n")
    assert codes[1].transient and not codes[0].transient
    with pytest.raises(P.ProtocolError, match="names no status"):
        P.parse_status_def('ESNN_STATUS(OK, 0, "ok")\nESNN_TRANSIENT(ERR_Y)\n')


def test_cobs_prefix_matches_a_byte_decoder() -> None:
    for data in (b"", b"\x00", b"\x11\x22\x00\x33", bytes(range(1, 255)) + b"\x00\x05"):
        assert cobs_prefix(P.cobs_encode(data)) == (data, True)
    assert cobs_prefix(b"\x05\x11\x22") == (b"\x11\x22", False)
    assert cobs_prefix(b"\x02\x11\x05\x22") == (b"\x11\x00\x22", False)


# ------------------------------------------------------------------------------------------
# C firmware (host build) == Python emulator, byte for byte


@pytest.fixture(scope="module")
def firmware_and_graph(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("gcc or make not installed")
    run_dir = tmp_path_factory.mktemp("run")
    graph = random_graph(5, input_size=784, hidden=(24,), n_classes=10, steps=8)
    (run_dir / "model.esg").write_bytes(esg.encode(graph))
    out = tmp_path_factory.mktemp("proj") / "host"
    assert cli_main(["export", str(run_dir), "--target", "c", "--device", "host",
                     "--out", str(out), "--json"]) == 0
    return build_project(out).elf, run_dir


def _stream(pixels: np.ndarray, seed: int) -> bytes:
    """Requests of every kind, with chunks lost, repeated and mangled, and junk frames."""
    rng = random.Random(seed)
    wire = bytearray(P.Frame(T.PING, 1).encode())
    seq = 100
    for k, px in enumerate(pixels):
        seq += 1
        req = P.ChunkedRequest(seq, px.tobytes(), chunk_max=rng.choice([16, 24, 64, 128]))
        frames = req.frames()
        kind = k % 6
        if kind == 0:  # clean
            wire += b"".join(f.encode() for f in frames)
        elif kind == 1:  # two chunks lost -> NAK, re-send, RESULT, then a POLL re-sends it
            lost = set(rng.sample(range(len(frames)), min(2, len(frames) - 1)))
            wire += b"".join(f.encode() for i, f in enumerate(frames) if i not in lost)
            wire += b"".join(f.encode() for f in req.frames(sorted(lost)))
            wire += req.poll().encode() + P.Frame(T.POLL, 9999, b"", P.FLAG_ANSWER).encode()
        elif kind == 2:  # the ANSWER chunk lost -> POLL -> NAK -> re-send
            wire += b"".join(f.encode() for f in frames[:-1]) + req.poll().encode()
            wire += frames[-1].encode()
            wire += frames[0].encode() + frames[-1].encode()  # late repeats of a done request
        elif kind == 3:  # mangled bytes in a chunk; then the whole request again
            bad = bytearray(frames[0].encode())
            for _ in range(rng.randint(1, 3)):
                bad[rng.randrange(len(bad) - 1)] = rng.randrange(256)
            wire += bad + b"".join(f.encode() for f in frames[1:])
            wire += b"".join(f.encode() for f in frames)
        elif kind == 4:  # raw INFER, and an INFER that interrupts an assembly
            wire += b"".join(f.encode() for f in frames[:1])
            wire += P.Frame(T.INFER, seq + 5000, px.tobytes()).encode()
            wire += b"".join(f.encode() for f in frames[1:])
            wire += b"".join(f.encode() for f in frames)
        else:  # malformed chunks and frames
            wire += P.Frame(T.DATA, seq, bytes([0, 0, 1, 0, 0]), P.FLAG_ANSWER).encode()
            wire += P.Frame(T.DATA, seq, bytes([0, 1, 1, 0x10, 3, 2, 2]), 2).encode()
            wire += P.Frame(T.DATA, seq, bytes([0, 1, 0]) + bytes(200)).encode()
            wire += P.Frame(T.DATA, seq, bytes([0, 1, 1, 0, 0, 9, 9])).encode()  # cut literal
            wire += P.Frame(T.POLL, seq, b"", 0x04).encode()  # bad flags
            wire += P.Frame(0x55, seq).encode() + b"\x07" * 300 + b"\x00\x00\x00"
            wire += bytes([3, 1, 2, 0])  # too short
            wire += b"".join(f.encode() for f in frames)
    return bytes(wire)


def _normalise(data: bytes) -> list[tuple[int, int, bytes]]:
    out = []
    for f in P.FrameDecoder().feed(data):
        assert isinstance(f, P.Frame), f
        payload = f.payload
        if f.type == T.RESULT:  # cycles differ: host ns vs emulated
            payload = payload[:4] + bytes(4) + payload[8:]
        if f.type == T.HELLO:  # board, runtime version, clock and cycle unit differ
            payload = payload[:1] + payload[12:19] + payload[20:38]
        out.append((f.type, f.seq, payload))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_firmware_answers_exactly_like_the_emulator(firmware_and_graph,  # type: ignore[no-untyped-def]
                                                    mnist_data_dir: Path, seed: int) -> None:
    elf, run_dir = firmware_and_graph
    pixels = mnist_images(mnist_data_dir, 24)[seed * 2:]
    wire = _stream(pixels, seed)
    proc = subprocess.run([str(elf), "--stdio"], input=wire, capture_output=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    dev = SimDevice.from_esg(run_dir / "model.esg")
    want = dev.reset() + dev.feed(wire)
    got = _normalise(proc.stdout)
    assert got == _normalise(want)
    types = [g[0] for g in got]
    # every kind of answer was exercised
    assert {T.HELLO, T.RESULT, T.NAK, T.ERROR} <= set(types)
    errors = {struct.unpack_from("<H", g[2])[0] for g in got if g[0] == T.ERROR}
    assert {P.status_value(n) for n in ("ERR_CHUNK", "ERR_FRAME_CRC", "ERR_FRAME",
                                        "ERR_UNKNOWN_TYPE")} <= errors
    # and every sample got its bit-exact RESULT
    sim = SimDevice.from_esg(run_dir / "model.esg")
    results = {g[1]: g[2] for g in got if g[0] == T.RESULT}
    for k, px in enumerate(pixels):
        ref = sim.infer(px.tobytes())
        r = P.InferResult.decode(results[101 + k])
        assert (r.prediction, r.counts, r.ops, r.spikes) == (ref.prediction, ref.counts,
                                                              ref.ops, ref.spikes)


# ------------------------------------------------------------------------------------------
# Byte faults and the chunked streamer


def test_byte_faults_are_seeded_and_independent_of_call_sizes() -> None:
    from edgesnn.host.faults import ByteFaults, ByteFaultStream

    data = bytes(random.Random(1).randrange(256) for _ in range(20_000))
    cfg = ByteFaults(flip=0.01, drop=0.01, dup=0.005, insert=0.002, burst=0.001, burst_len=4)
    whole = ByteFaultStream(cfg, 7).apply(data)
    cut = ByteFaultStream(cfg, 7)
    parts, pos, rng = [], 0, random.Random(2)
    while pos < len(data):
        n = rng.randrange(1, 700)
        parts.append(cut.apply(data[pos:pos + n]))
        pos += n
    assert b"".join(parts) == whole
    s = cut.stats
    assert s.bytes == 20_000 and 120 < s.flipped < 290 and 120 < s.dropped < 290
    assert 40 < s.duplicated < 170 and 10 < s.inserted < 80 and s.bursts > 5
    assert len(whole) == 20_000 - s.dropped + s.duplicated + s.inserted
    assert ByteFaultStream(cfg, 8).apply(data) != whole
    clean = ByteFaultStream(ByteFaults(), 7)
    assert clean.apply(data) == data
    with pytest.raises(ValueError):
        ByteFaults(flip=1.5)


@pytest.mark.parametrize("rate", [0.0, 1e-3])
def test_chunked_stream_through_byte_faults_is_exact(mnist_data_dir: Path, rate: float) -> None:
    from edgesnn.graph.golden import simulate
    from edgesnn.host.faults import ByteFaults, ByteFaultyTransport
    from edgesnn.host.link import DeviceLink, stream_samples
    from edgesnn.host.simdevice import SimDeviceTransport

    graph = random_graph(3, input_size=784, hidden=(16,), n_classes=10, steps=6)
    px = mnist_images(mnist_data_dir, 120)
    gold = simulate(graph, px)
    dev = SimDevice(graph, bytes(16))
    faults = ByteFaults(flip=rate, drop=rate, dup=rate / 2)
    link = DeviceLink(ByteFaultyTransport(SimDeviceTransport(dev), faults, seed=5), poll_s=0.002)
    link.handshake(attempts=20, timeout_s=0.3)
    seen: list[int] = []
    outs = {}

    def on(o):  # type: ignore[no-untyped-def]
        seen.append(o.index)
        outs[o.index] = o

    st = stream_samples(link, ((i, px[i].tobytes()) for i in range(len(px))), on, window=4,
                        budget_s=60)
    assert sorted(seen) == list(range(len(px)))
    for i, o in outs.items():
        assert o.status == "ok", o.reason
        assert (o.prediction, o.counts, o.ops, o.spikes) == (
            gold.pred[i], gold.counts[i].tolist(), gold.ops[i].tolist(), gold.spikes[i].tolist())
    if rate == 0:
        assert st.resent == 0 and st.timeouts == 0
        # compact input: far fewer bytes than 784 raw pixels per sample
        assert st.wire_bytes_tx / len(px) < 784 / 2
    else:
        assert st.resent > 0


@pytest.mark.qemu
def test_lm3s6965evb_answers_exactly_like_the_emulator(tmp_path: Path,
                                                       mnist_data_dir: Path) -> None:
    """The same mangled chunked stream on the Cortex-M3 build under QEMU."""
    import time

    import serial

    from edgesnn.host.launch import launch
    from tests.test_qemu import build_model_firmware, load_profile, need_arm_toolchain

    need_arm_toolchain()
    graph = random_graph(5, input_size=784, hidden=(24,), n_classes=10, steps=8)
    elf, blob = build_model_firmware(graph, "lm3s6965evb", tmp_path)
    pixels = mnist_images(mnist_data_dir, 14)[2:]
    wire = _stream(pixels, 3)
    dev = SimDevice(graph, header_hash(blob))
    want = _normalise(dev.feed(wire))
    got_raw = bytearray()
    with launch(load_profile("lm3s6965evb"), elf) as session:
        port = serial.serial_for_url(session.url, timeout=0.01)
        try:
            for k in range(0, len(wire), 256):
                port.write(wire[k:k + 256])
                got_raw += port.read(4096)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                got_raw += port.read(4096)
                if len(_without_boot_hello(bytes(got_raw))) >= len(want):
                    break
        finally:
            port.close()
    assert _without_boot_hello(bytes(got_raw)) == want


def _without_boot_hello(data: bytes) -> list[tuple[int, int, bytes]]:
    """The boot HELLO (seq 0) may or may not reach a host that connects after QEMU started."""
    return [g for g in _normalise(data) if not (g[0] == T.HELLO and g[1] == 0)]
