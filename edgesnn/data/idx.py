"""Reader for the IDX format of the MNIST family (LeCun et al., http://yann.lecun.com/exdb/mnist/).

An IDX file is ``0x00 0x00 <dtype> <ndim>`` followed by ``ndim`` big-endian uint32 sizes and
the data. MNIST images use magic 0x00000803 (uint8, 3 dims), labels 0x00000801 (uint8, 1 dim).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

IMAGE_MAGIC = 0x00000803
LABEL_MAGIC = 0x00000801


class IdxError(ValueError):
    """A file that is not a well-formed IDX file; the message names the file."""


def read_bytes(path: Path) -> bytes:
    """The uncompressed bytes of ``path`` (gunzipped when it ends in ``.gz``)."""
    data = Path(path).read_bytes()
    if str(path).endswith(".gz"):
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise IdxError(f"{path}: not a valid gzip file ({exc})") from exc
    return data


def parse(data: bytes, path: Path | str, magic: int) -> np.ndarray:
    """Parse IDX bytes into a uint8 array; ``magic`` is the expected header word."""
    if len(data) < 8:
        raise IdxError(f"{path}: {len(data)} bytes is too short for an IDX header")
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        raise IdxError(f"{path}: IDX magic 0x{got:08x}, expected 0x{magic:08x}")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(data[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim)]
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise IdxError(f"{path}: {len(data)} bytes but the header {dims} needs {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()
