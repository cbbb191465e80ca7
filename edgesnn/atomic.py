"""Write files and folders whole or not at all: a temporary beside the target, one rename.

The one home of atomic writes in edgesnn. A reader never sees a half-written ``model.pt``,
``.esg``, report or downloaded archive: everything is written to a hidden temporary in the
target's folder and renamed over the target (``os.replace``) only once it is complete; on
any error the temporary is removed and the target is left as it was. Files get the usual
mode (``0o666`` less the umask), not ``mkstemp``'s ``0o600``.

A leaf module: it imports only the standard library, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_dir", "atomic_file", "file_mode", "write_bytes", "write_json",
           "write_text"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets under the current umask (``0o666 & ~umask``)."""
    return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it replaces ``path``.

    The caller writes the temporary by name (``torch.save``, ``np.save`` through an open
    file, a library that takes a path). ``fsync=True`` flushes it to the disk before the
    rename. The parent folder is created if missing.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_file(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any, **dumps: Any) -> None:
    """Write ``json.dumps(obj, indent=2, sort_keys=True, **dumps)`` and a newline atomically;
    ``dumps`` overrides those defaults (``indent``, ``sort_keys``, ``default``...)."""
    kwargs: dict[str, Any] = {"indent": 2, "sort_keys": True, **dumps}
    write_text(path, json.dumps(obj, **kwargs) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; when the block succeeds it becomes ``path``.

    Without ``replace``, ``path`` must not exist or be an empty folder, checked before the
    block runs (``FileExistsError`` naming it otherwise). With ``replace=True`` an existing
    ``path`` is removed once the new folder is complete (the caller decides beforehand
    whether that folder may be replaced).
    """
    out = Path(path)
    if out.exists() and not replace and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} already exists and is not an empty folder; "
                              "choose a new or empty folder")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} already exists and is a file, not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0o700
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
