"""Spike encoders: exact equality with the integer encoders of SPEC 3.1, and statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgesnn.data.encoders import encode
from edgesnn.graph import prng
from edgesnn.graph.golden import _ref_hash32

# SPEC 3.1 in plain Python integers (independent of numpy): the golden module's reference.
_hash_py = _ref_hash32


# (counter, seed, hash): computed with _hash_py from the SPEC text.
REFERENCE = [(0, 0, 0x0), (1, 0, 0x01FCE552), (0, 0x1234ABCD, 0x2BF67F71),
             (12345, 0x1234ABCD, 0xA82F44D3), (0xFFFFFFFF, 0xDEADBEEF, 0x36B77439)]


@pytest.mark.parametrize(("k", "seed", "value"), REFERENCE)
def test_prng_reference_values(k: int, seed: int, value: int) -> None:
    assert _hash_py(k, seed) == value
    assert int(prng.hash32(k, seed)) == value


def test_prng_matches_python_on_many_counters() -> None:
    ks = np.random.default_rng(1).integers(0, 2**32, 500, dtype=np.uint64)
    got = prng.hash32(ks, 0x1234ABCD)
    assert [int(v) for v in got] == [_hash_py(int(k), 0x1234ABCD) for k in ks]


@pytest.fixture
def pixels() -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    p = torch.randint(0, 256, (6, 50), generator=g, dtype=torch.uint8)
    p[:, :5] = 0
    p[:, 5:8] = 255
    return p


@pytest.mark.parametrize("seed", [0, 0x1234ABCD, 0xFFFFFFFF])
def test_rate_equals_integer_encoder(pixels: torch.Tensor, seed: int) -> None:
    x = encode(pixels, "rate", 13, seed)
    assert x.dtype == torch.float32 and x.shape == (13, 6, 50)
    ref = prng.rate_spikes(pixels.numpy(), 13, seed)
    assert np.array_equal(x.numpy().astype(bool), ref)
    assert not x[:, :, :5].any()  # zero pixels never spike


def test_latency_equals_integer_encoder(pixels: torch.Tensor) -> None:
    for steps in (1, 7, 25, 300):
        x = encode(pixels, "latency", steps, 0)
        assert np.array_equal(x.numpy().astype(bool), prng.latency_spikes(pixels.numpy(), steps))
        nonzero = (pixels > 0).to(torch.float32)
        assert torch.equal(x.sum(0), nonzero)  # each nonzero pixel spikes exactly once
    x = encode(pixels, "latency", 10, 0)
    assert torch.all(x[0, :, 5:8] == 1)  # 255 spikes first: ((255-255)*10)>>8 = 0


def test_direct_is_scaled_pixels(pixels: torch.Tensor) -> None:
    x = encode(pixels, "direct", 4, 0)
    assert x.shape == (4, 6, 50)
    assert torch.equal(x[2], pixels.float() / 255.0)


def test_rate_statistics_deterministic_and_stochastic() -> None:
    values = torch.arange(256, dtype=torch.uint8).repeat(8, 1)  # [8, 256]
    steps = 400
    p = values[0].double() / 256.0
    for stochastic in (False, True):
        x = encode(values, "rate", steps, 0x1234ABCD, stochastic=stochastic,
                   generator=torch.Generator().manual_seed(0))
        rate = x.double().mean(dim=(0, 1))
        # deterministic: the 8 rows share one hash table (400 draws per value); stochastic:
        # 3200 independent draws. Bernoulli std <= 0.5 / sqrt(draws); allow 5 sigma.
        draws = steps if not stochastic else steps * 8
        tol = 5 * 0.5 / draws**0.5
        assert torch.all((rate - p).abs() < tol), float((rate - p).abs().max())
        assert abs(float(x.double().mean()) - float(p.mean())) < 0.005
        assert float(rate[0]) == 0.0


def test_stochastic_noise_is_fresh_each_batch() -> None:
    px = torch.full((4, 100), 128, dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    a = encode(px, "rate", 10, 0, stochastic=True, generator=g)
    b = encode(px, "rate", 10, 0, stochastic=True, generator=g)
    assert not torch.equal(a, b)
    g2 = torch.Generator().manual_seed(0)
    assert torch.equal(a, encode(px, "rate", 10, 0, stochastic=True, generator=g2))


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="accepted: rate, latency, direct"):
        encode(torch.zeros(1, 3, dtype=torch.uint8), "poisson", 3, 0)
    with pytest.raises(ValueError, match="uint8"):
        encode(torch.zeros(1, 3), "rate", 3, 0)
