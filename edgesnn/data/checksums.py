"""Known checksums of the dataset files, and verification with a per-file result cache.

Sources:

* MNIST ``.gz`` MD5 and SHA-256, and the MD5 of the uncompressed IDX files:
  the official MNIST MD5s of the original distribution; SHA-256 computed on the
  byte-identical originals.
* Fashion-MNIST ``.gz`` MD5: the official list in Zalando Research's README
  (https://github.com/zalandoresearch/fashion-mnist, "Get the Data"; also shipped as
  ``/usr/share/doc/dataset-fashion-mnist/README.md.gz``). Uncompressed IDX MD5s: as
  published in public dataset loaders (e.g. the ``raw_data`` tables of several MNIST-family
  loaders) and equal to those of the Debian package ``dataset-fashion-mnist``, whose
  ``.gz`` files were re-compressed by Debian (different gzip header) and therefore carry
  other ``.gz`` digests with the same content.

A ``.gz`` file passes if its own digest matches; otherwise (a re-compressed copy such as
Debian's) its uncompressed content must match the IDX MD5. A raw IDX file must match the IDX
MD5. Results are cached per (resolved path, size, mtime) in memory and in
``<cache>/verified.json`` so that repeated loads do not re-hash.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

from edgesnn.atomic import write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileSums:
    gz_md5: str
    gz_sha256: str | None
    raw_md5: str


CHECKSUMS: dict[str, dict[str, FileSums]] = {
    "mnist": {
        "train-images-idx3-ubyte": FileSums(
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "6bbc9ace898e44ae57da46a324031adb"),
        "train-labels-idx1-ubyte": FileSums(
            "d53e105ee54ea40749a09fcbcd1e9432",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "a25bea736e30d166cdddb491f175f624"),
        "t10k-images-idx3-ubyte": FileSums(
            "9fb629c4189551a2d022fa330f9573f3",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "2646ac647ad5339dbf082846283269ea"),
        "t10k-labels-idx1-ubyte": FileSums(
            "ec29112dd5afa0611ce80d1b7f02629c",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "27ae3e4e09519cfbb04c329615203637"),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": FileSums(
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d", None, "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
        "train-labels-idx1-ubyte": FileSums(
            "25c81989df183df01b3e8a0aad5dffbe", None, "9018921c3c673c538a1fc5bad174d6f9"),
        "t10k-images-idx3-ubyte": FileSums(
            "bef4ecab320f06d8554ea6380940ec79", None, "8181f5470baa50b63fa0f6fddb340f0a"),
        "t10k-labels-idx1-ubyte": FileSums(
            "bb300cfdad3c16e7a12a480ee83cd310", None, "15d484375f8d13e6eb1aabb0c3f46965"),
    },
}


class ChecksumError(ValueError):
    """A dataset file whose bytes are not the published ones (corrupted or truncated)."""


_lock = threading.Lock()
_memo: dict[str, str] = {}


def _key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _store(cache_dir: Path | None) -> Path | None:
    return None if cache_dir is None else cache_dir / "verified.json"


def _load_store(store: Path | None) -> dict[str, str]:
    if store is None or not store.is_file():
        return {}
    try:
        data = json.loads(store.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_store(store: Path | None, key: str, value: str) -> None:
    if store is None:
        return
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        data = _load_store(store)
        data[key] = value
        write_json(store, data, indent=0)
    except OSError as exc:  # a read-only cache only costs speed
        log.debug("cannot write verification cache %s: %s", store, exc)


def digest(data: bytes, algo: str) -> str:
    return hashlib.new(algo, data).hexdigest()


def check_bytes(dataset: str, stem: str, path: Path | str, data: bytes, gz: bool) -> str:
    """Raise :class:`ChecksumError` unless ``data`` (the file's bytes) is the published file.

    Returns how it was verified (``"gz-md5+sha256"``, ``"gz-md5"`` or ``"idx-md5"``).
    """
    sums = CHECKSUMS[dataset][stem]
    if gz:
        md5 = digest(data, "md5")
        if md5 == sums.gz_md5:
            if sums.gz_sha256 is not None:
                sha = digest(data, "sha256")
                if sha != sums.gz_sha256:
                    raise ChecksumError(f"{path}: SHA-256 {sha} != expected {sums.gz_sha256}")
                return "gz-md5+sha256"
            return "gz-md5"
        try:  # a re-compressed copy (e.g. Debian's) carries the same content
            raw = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            raw = b""
        raw_md5 = digest(raw, "md5")
        if raw_md5 == sums.raw_md5:
            return "idx-md5"
        raise ChecksumError(
            f"{path}: checksum mismatch: MD5 {md5} (expected {sums.gz_md5} for the .gz) and "
            f"uncompressed MD5 {raw_md5} (expected {sums.raw_md5}); the file is corrupted or "
            "truncated: delete it and download it again")
    md5 = digest(data, "md5")
    if md5 != sums.raw_md5:
        raise ChecksumError(f"{path}: checksum mismatch: MD5 {md5}, expected {sums.raw_md5}; "
                            "the file is corrupted or truncated")
    return "idx-md5"


def verify_file(dataset: str, stem: str, path: Path, cache_dir: Path | None) -> str:
    """Verify ``path`` against the table, using the cached result when the file is unchanged."""
    key = _key(path)
    with _lock:
        if key in _memo:
            return _memo[key]
    store = _store(cache_dir)
    cached = _load_store(store).get(key)
    if cached:
        with _lock:
            _memo[key] = cached
        return cached
    how = check_bytes(dataset, stem, path, path.read_bytes(), gz=path.name.endswith(".gz"))
    with _lock:
        _memo[key] = how
    _save_store(store, key, how)
    log.info("verified %s (%s)", path, how)
    return how


def forget_memo() -> None:
    """Drop the in-process verification results (tests)."""
    with _lock:
        _memo.clear()
