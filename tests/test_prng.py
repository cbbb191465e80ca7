"""The rate encoder's counter hash and the latency encoder (SPEC.md 3.1)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgesnn.graph.golden import _ref_hash32
from edgesnn.graph.prng import hash32, latency_spikes, latency_steps, rate_spikes, rate_table

ROOT = Path(__file__).resolve().parents[1]


def test_prng_reference_vectors() -> None:
    ref = json.loads((ROOT / "tests" / "golden" / "prng_vectors.json").read_text())
    rows = ref["hash32"]
    assert len(rows) >= 50
    for row in rows:
        assert int(hash32(row["k"], row["seed"])) == row["hash32"]
    rt = ref["rate_table"]
    assert rate_table(rt["steps"], rt["input_size"], rt["seed"]).tolist() == rt["table"]


def test_hash_by_hand() -> None:
    # k = 1, seed = 0: x = 0x9E3779B9, then the three xor-shift-multiply rounds of SPEC.md 3.1
    x = 0x9E3779B9
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    x ^= x >> 16
    assert int(hash32(1, 0)) == x == _ref_hash32(1, 0)
    assert int(hash32(0, 0)) == 0  # the hash of zero is zero
    ks = np.arange(0, 1 << 32, 9_999_991, dtype=np.uint64)
    assert hash32(ks, 77).tolist() == [_ref_hash32(int(k), 77) for k in ks]


def test_rate_encoder_spikes_with_probability_p_over_256() -> None:
    steps, n = 200, 256
    px = np.arange(256, dtype=np.uint8).reshape(1, n)
    s = rate_spikes(px, steps, seed=12345)  # [T, 1, n]
    rate = s[:, 0, :].mean(axis=0)
    assert not s[:, 0, 0].any()  # p = 0 never spikes
    expected = np.arange(256) / 256
    assert np.abs(rate - expected).max() < 0.12
    assert abs(rate.mean() - expected.mean()) < 0.01
    # the pattern depends on (t, i, seed) only, not on the other samples in the batch
    both = rate_spikes(np.stack([px[0], px[0][::-1]]), steps, seed=12345)
    assert np.array_equal(both[:, 0], s[:, 0])


def test_latency_encoder_timing() -> None:
    px = np.array([[0, 1, 128, 254, 255]], dtype=np.uint8)
    t = latency_steps(px, 10)
    assert t.tolist() == [[-1, (254 * 10) >> 8, (127 * 10) >> 8, 0, 0]]
    s = latency_spikes(px, 10)
    assert s.sum(axis=0).tolist() == [[0, 1, 1, 1, 1]]  # each nonzero pixel exactly once
    assert (latency_steps(np.full((1, 1), 1, dtype=np.uint8), 65535) < 65535).all()
