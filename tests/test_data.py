"""MNIST / Fashion-MNIST loading: shapes, known statistics, checksums, cache, download."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgesnn.data import ChecksumError, DataError, load_dataset
from edgesnn.data import checksums as cks

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("EDGESNN_CACHE", str(cache))
    monkeypatch.delenv("EDGESNN_MIRRORS", raising=False)
    cks.forget_memo()
    return cache


def test_mnist_test_split(mnist_data_dir: Path) -> None:
    d = load_dataset("mnist", "test", mnist_data_dir)
    assert d.images.shape == (10000, 784) and d.images.dtype == np.uint8
    assert d.labels.shape == (10000,) and d.labels.dtype == np.int64
    assert d.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # SOURCE.md
    assert np.bincount(d.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028,
                                              974, 1009]
    assert abs(float(d.images.mean()) - 33.7912) < 1e-3
    assert d.name == "mnist" and d.split == "test"


def test_mnist_train_limit(mnist_data_dir: Path) -> None:
    d = load_dataset("mnist", "train", mnist_data_dir, limit=10)
    assert d.images.shape == (10, 784)
    assert d.labels.tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_env_lookup(mnist_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESNN_DATA", str(mnist_data_dir))
    assert len(load_dataset("mnist", "test", limit=5)) == 5


def test_repeated_load_uses_cached_verification(mnist_data_dir: Path, _isolated_cache: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    load_dataset("mnist", "train", mnist_data_dir)
    assert (_isolated_cache / "verified.json").is_file()
    cks.forget_memo()  # a new process: only the on-disk cache is left
    calls: list[str] = []
    real = cks.check_bytes
    monkeypatch.setattr(cks, "check_bytes", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    t0 = time.perf_counter()
    d = load_dataset("mnist", "train", mnist_data_dir)
    assert calls == []  # nothing re-hashed
    assert time.perf_counter() - t0 < 5.0
    assert d.images.shape == (60000, 784)


def _copy_mnist(src: Path, dst: Path) -> Path:
    (dst / "mnist").mkdir(parents=True)
    for f in FILES:
        shutil.copyfile(src / "mnist" / f, dst / "mnist" / f)
    return dst


def test_truncated_file_is_rejected(mnist_data_dir: Path, tmp_path: Path) -> None:
    base = _copy_mnist(mnist_data_dir, tmp_path / "data")
    path = base / "mnist" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte.gz.*mismatch"):
        load_dataset("mnist", "test", base)


def test_corrupted_file_is_rejected(mnist_data_dir: Path, tmp_path: Path) -> None:
    base = _copy_mnist(mnist_data_dir, tmp_path / "data")
    path = base / "mnist" / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[5000] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="t10k-images-idx3-ubyte.gz"):
        load_dataset("mnist", "test", base)


def test_raw_and_recompressed_files_verify(mnist_data_dir: Path, tmp_path: Path) -> None:
    base = tmp_path / "data"
    (base / "mnist").mkdir(parents=True)
    src = mnist_data_dir / "mnist"
    raw = gzip.decompress((src / "t10k-images-idx3-ubyte.gz").read_bytes())
    (base / "mnist" / "t10k-images-idx3-ubyte").write_bytes(raw)  # uncompressed
    labels = gzip.decompress((src / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (base / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels, mtime=0))
    d = load_dataset("mnist", "test", base)
    assert d.labels[:3].tolist() == [7, 2, 1]
    (base / "mnist" / "t10k-images-idx3-ubyte").write_bytes(raw[:-1] + b"\x01")
    cks.forget_memo()
    with pytest.raises(ChecksumError, match="t10k-images-idx3-ubyte"):
        load_dataset("mnist", "test", base)


def test_checksum_table_matches_shared_files(mnist_data_dir: Path) -> None:
    for f in FILES:
        data = (mnist_data_dir / "mnist" / f).read_bytes()
        sums = cks.CHECKSUMS["mnist"][f[:-3]]
        assert hashlib.md5(data).hexdigest() == sums.gz_md5
        assert hashlib.sha256(data).hexdigest() == sums.gz_sha256


def test_offline_error_says_where_and_how(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESNN_OFFLINE", "1")
    monkeypatch.delenv("EDGESNN_DATA", raising=False)
    with pytest.raises(DataError) as exc:
        load_dataset("mnist", "test", tmp_path / "empty")
    msg = str(exc.value)
    assert str(tmp_path / "empty" / "mnist") in msg and "EDGESNN_DATA" in msg


def test_bad_arguments() -> None:
    with pytest.raises(DataError, match="accepted: mnist, fashion-mnist"):
        load_dataset("cifar")
    with pytest.raises(DataError, match="split"):
        load_dataset("mnist", "val")


@pytest.fixture
def mirror(mnist_data_dir: Path, tmp_path: Path):
    """A local HTTP mirror (127.0.0.1) serving a copy of the MNIST files."""
    root = tmp_path / "www"
    _copy_mnist(mnist_data_dir, root)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/mnist/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_download_from_mirror(mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, url = mirror
    monkeypatch.delenv("EDGESNN_DATA", raising=False)
    monkeypatch.delenv("EDGESNN_OFFLINE", raising=False)
    monkeypatch.setenv("EDGESNN_MIRRORS", "http://127.0.0.1:9/nothing/," + url)
    dest = tmp_path / "fresh"
    d = load_dataset("mnist", "test", dest)
    assert d.labels[:4].tolist() == [7, 2, 1, 0]
    names = sorted(p.name for p in (dest / "mnist").iterdir())
    assert names == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]  # no tmp left


def test_download_rejects_bad_bytes(mirror, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root, url = mirror
    bad = root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:1000])
    monkeypatch.delenv("EDGESNN_DATA", raising=False)
    monkeypatch.delenv("EDGESNN_OFFLINE", raising=False)
    monkeypatch.setenv("EDGESNN_MIRRORS", url)
    dest = tmp_path / "fresh"
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz.*mismatch"):
        load_dataset("mnist", "test", dest)
    assert not (dest / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()
    assert not any(p.name.endswith(".part") for p in (dest / "mnist").iterdir())


FASHION = Path("/usr/share/datasets")


@pytest.mark.skipif(not (FASHION / "fashion-mnist").is_dir(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGESNN_DATA", raising=False)
    d = load_dataset("fashion-mnist", "test")
    assert d.images.shape == (10000, 784) and d.labels.shape == (10000,)
    assert d.labels[:5].tolist() == [9, 2, 1, 1, 6]
    assert np.bincount(d.labels).tolist() == [1000] * 10
