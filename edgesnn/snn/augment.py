"""Training-time augmentation of uint8 image batches, applied before spike encoding.

``random_shift`` translates every square image of a batch by its own random integer offset
``(dy, dx)`` in ``-max_shift..max_shift`` (uniform, independent), filling the vacated border
with 0 (background). It is the standard trick that lets a fully connected network generalise
past what it can learn from the fixed pixel positions alone. Pixels stay uint8, so any
encoder (rate, latency, direct) sees an ordinary image. Reproducible: all randomness comes
from the ``torch.Generator`` passed in.
"""

from __future__ import annotations

import math

import torch


class AugmentError(ValueError):
    """A batch or an augmentation option that cannot be used."""


def image_side(n: int) -> int:
    """Side of a square image with ``n`` pixels; raises if ``n`` is not a square."""
    side = math.isqrt(n)
    if side * side != n:
        raise AugmentError(f"cannot shift {n}-pixel inputs: shift augmentation needs square "
                           "single-channel images (n = side * side)")
    return side


def random_shift(pixels: torch.Tensor, max_shift: int,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image of ``pixels [B, side*side]`` (uint8) by a random ``(dy, dx)`` with
    ``|dy|, |dx| <= max_shift``; returns a new ``[B, side*side]`` uint8 tensor."""
    if max_shift < 0:
        raise AugmentError(f"max_shift={max_shift}; must be >= 0")
    if pixels.dim() != 2:
        raise AugmentError(f"expected pixels [B, n], got shape {tuple(pixels.shape)}")
    if max_shift == 0 or pixels.shape[0] == 0:
        return pixels.clone()
    b, n = pixels.shape
    side = image_side(n)
    if max_shift >= side:
        raise AugmentError(f"max_shift={max_shift}; must be < the image side {side}")
    k = max_shift
    offsets = torch.randint(-k, k + 1, (2, b), generator=generator)
    padded = torch.zeros((b, side + 2 * k, side + 2 * k), dtype=pixels.dtype)
    padded[:, k:k + side, k:k + side] = pixels.reshape(b, side, side).cpu()
    out = torch.empty((b, side, side), dtype=pixels.dtype)
    # an image shifted by (dy, dx) is the padded image cropped at (k - dy, k - dx)
    code = (offsets[0] + k) * (2 * k + 1) + (offsets[1] + k)
    for c in torch.unique(code).tolist():
        dy, dx = c // (2 * k + 1) - k, c % (2 * k + 1) - k
        sel = (code == c).nonzero().squeeze(1)
        out[sel] = padded[sel, k - dy:k - dy + side, k - dx:k - dx + side]
    return out.reshape(b, n).to(pixels.device)
