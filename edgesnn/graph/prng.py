"""The counter-based hash that drives the rate encoder (SPEC.md section 3.1).

``hash32`` is the C runtime's ``esnn_hash32`` twin; ``rate_table`` gives, for every step and
pixel, the 8-bit value a pixel must exceed to spike, so encoding a batch is one comparison.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint32(0x9E3779B9)
_M1 = np.uint32(0x7FEB352D)
_M2 = np.uint32(0x846CA68B)


def hash32(counter: np.ndarray | int, seed: int) -> np.ndarray:
    """``esnn_hash32(k, seed)`` for every element of ``counter`` (uint32 arithmetic)."""
    k = np.asarray(counter, dtype=np.uint64).astype(np.uint32)
    with np.errstate(over="ignore"):
        x = k * _GOLDEN + np.uint32(seed & 0xFFFFFFFF)
        x ^= x >> np.uint32(16)
        x *= _M1
        x ^= x >> np.uint32(15)
        x *= _M2
        x ^= x >> np.uint32(16)
    return x


def rate_table(steps: int, input_size: int, seed: int) -> np.ndarray:
    """uint8 ``[steps, input_size]``: pixel ``p`` at (t, i) spikes iff ``table[t, i] < p``."""
    k = np.arange(steps * input_size, dtype=np.uint64)
    return (hash32(k, seed) >> np.uint32(24)).astype(np.uint8).reshape(steps, input_size)


def rate_spikes(pixels: np.ndarray, steps: int, seed: int) -> np.ndarray:
    """bool ``[steps, batch, input_size]`` input spikes of the rate encoder."""
    pixels = np.asarray(pixels, dtype=np.uint8)
    table = rate_table(steps, pixels.shape[-1], seed)
    return table[:, None, :] < pixels[None, :, :]


def latency_steps(pixels: np.ndarray, steps: int) -> np.ndarray:
    """int ``[batch, input_size]``: the step each pixel spikes at, -1 for zero pixels."""
    p = np.asarray(pixels, dtype=np.int64)
    t = ((255 - p) * steps) >> 8
    return np.where(p > 0, t, -1)


def latency_spikes(pixels: np.ndarray, steps: int) -> np.ndarray:
    """bool ``[steps, batch, input_size]`` input spikes of the latency encoder."""
    t = latency_steps(pixels, steps)
    return np.arange(steps)[:, None, None] == t[None, :, :]
