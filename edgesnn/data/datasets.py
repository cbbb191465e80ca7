"""``load_dataset``: MNIST / Fashion-MNIST from IDX files, verified, cached, or downloaded.

Lookup order for the folder holding ``<name>/`` (``mnist/`` or ``fashion-mnist/``):
the explicit ``data_dir``, ``$EDGESNN_DATA``, the user cache (``$EDGESNN_CACHE``, else
``$XDG_CACHE_HOME/edgesnn``, else ``~/.cache/edgesnn``), then ``/usr/share/datasets``
(Debian's ``dataset-fashion-mnist``). Each ``<name>/`` holds the standard files
``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` gzipped (``.gz``) or raw. When nothing is
found and ``$EDGESNN_OFFLINE`` is unset, the files are downloaded into ``data_dir`` (if
given) or the user cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesnn.atomic import atomic_file
from edgesnn.data import DATASETS
from edgesnn.data.checksums import verify_file
from edgesnn.data.download import DownloadError, fetch, mirrors_for
from edgesnn.data.idx import IMAGE_MAGIC, LABEL_MAGIC, parse, read_bytes

log = logging.getLogger(__name__)

SPLITS = {"train": "train", "test": "t10k"}
SYSTEM_DIRS = (Path("/usr/share/datasets"),)


class DataError(ValueError):
    """The dataset cannot be loaded; the message says where it looked and how to fix it."""


@dataclass
class Dataset:
    """``images``: uint8 ``[N, 784]`` (28x28 row-major); ``labels``: int64 ``[N]``."""

    images: np.ndarray
    labels: np.ndarray
    name: str
    split: str
    source: Path | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def cache_dir() -> Path:
    """The user cache: ``$EDGESNN_CACHE``, ``$XDG_CACHE_HOME/edgesnn`` or ``~/.cache/edgesnn``."""
    env = os.environ.get("EDGESNN_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "edgesnn"


def search_dirs(data_dir: Path | str | None = None) -> list[Path]:
    """The base folders searched, in order."""
    dirs: list[Path] = []
    if data_dir is not None:
        dirs.append(Path(data_dir))
    env = os.environ.get("EDGESNN_DATA")
    if env:
        dirs.append(Path(env))
    dirs.append(cache_dir())
    dirs.extend(SYSTEM_DIRS)
    out: list[Path] = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def _stems(split: str) -> tuple[str, str]:
    prefix = SPLITS[split]
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _find(folder: Path, stem: str) -> Path | None:
    for cand in (folder / f"{stem}.gz", folder / stem):
        if cand.is_file():
            return cand
    return None


def _writable_cache() -> Path | None:
    c = cache_dir()
    try:
        c.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return c if os.access(c, os.W_OK) else None


def _decode(name: str, files: tuple[Path, Path], cache: Path | None) -> tuple[np.ndarray, ...]:
    """Parse (or load the cached ``.npy`` of) the verified images and labels files."""
    tag = hashlib.sha256("|".join(
        f"{p.resolve()}|{p.stat().st_size}|{p.stat().st_mtime_ns}" for p in files).encode()
    ).hexdigest()[:16]
    npy = None if cache is None else cache / "npy" / f"{name}-{files[0].name.split('-')[0]}-{tag}"
    if npy is not None:
        try:
            return (np.load(f"{npy}-images.npy"), np.load(f"{npy}-labels.npy"))
        except (OSError, ValueError):
            pass
    images = parse(read_bytes(files[0]), files[0], IMAGE_MAGIC)
    labels = parse(read_bytes(files[1]), files[1], LABEL_MAGIC)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DataError(f"{files[0]} {images.shape} and {files[1]} {labels.shape} do not match")
    images = images.reshape(images.shape[0], -1)
    labels = labels.astype(np.int64)
    if npy is not None:
        try:
            npy.parent.mkdir(parents=True, exist_ok=True)
            for suffix, arr in (("images", images), ("labels", labels)):
                with atomic_file(f"{npy}-{suffix}.npy") as tmp, open(tmp, "wb") as fh:
                    np.save(fh, arr)
        except OSError as exc:
            log.debug("cannot cache decoded arrays in %s: %s", npy.parent, exc)
    return images, labels


def load_dataset(name: str = "mnist", split: str = "test",
                 data_dir: Path | str | None = None, limit: int | None = None) -> Dataset:
    """Load ``split`` ("train" or "test") of ``name`` ("mnist" or "fashion-mnist").

    Files are checksum-verified (cached per path, size and mtime); a corrupted or truncated
    file raises :class:`~edgesnn.data.checksums.ChecksumError` naming it. ``limit`` keeps the
    first ``limit`` samples.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; accepted: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; accepted: {', '.join(SPLITS)}")
    if limit is not None and limit < 1:
        raise DataError(f"limit={limit}; must be >= 1 (or None for all samples)")
    stems = _stems(split)
    bases = search_dirs(data_dir)
    files: tuple[Path, Path] | None = None
    for base in bases:
        found = [_find(base / name, s) for s in stems]
        if found[0] is not None and found[1] is not None:
            files = (found[0], found[1])
            break
    if files is None:
        files = _download(name, stems, bases, data_dir)
    cache = _writable_cache()
    for stem, path in zip(stems, files, strict=True):
        verify_file(name, stem, path, cache)
    images, labels = _decode(name, files, cache)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return Dataset(images=images, labels=labels, name=name, split=split,
                   source=files[0].parent)


def _download(name: str, stems: tuple[str, str], bases: list[Path],
              data_dir: Path | str | None) -> tuple[Path, Path]:
    looked = ", ".join(str(b / name) for b in bases)
    fix = ("set EDGESNN_DATA (or pass --data-dir) to a folder holding "
           f"{name}/{stems[0]}.gz and {name}/{stems[1]}.gz")
    if os.environ.get("EDGESNN_OFFLINE"):
        raise DataError(f"{name} not found (looked in {looked}) and EDGESNN_OFFLINE is set; {fix}")
    dest = Path(data_dir) / name if data_dir is not None else cache_dir() / name
    try:
        paths = [fetch(name, stem, dest) for stem in stems]
    except (DownloadError, OSError) as exc:
        raise DataError(f"{name} not found (looked in {looked}) and the download from "
                        f"{', '.join(mirrors_for(name))} failed ({exc}); {fix}") from exc
    return paths[0], paths[1]
