"""Fetching dataset files from public mirrors, checksum-verified and written atomically."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from edgesnn.atomic import write_bytes
from edgesnn.data.checksums import ChecksumError, check_bytes

log = logging.getLogger(__name__)

# Public mirrors of the original files (the same bytes as the official distribution).
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
}
TIMEOUT_S = 30.0


class DownloadError(OSError):
    """Every mirror failed; the message lists what was tried and why it failed."""


def mirrors_for(dataset: str) -> tuple[str, ...]:
    """The mirror base URLs: ``$EDGESNN_MIRRORS`` (comma-separated) overrides the defaults."""
    env = os.environ.get("EDGESNN_MIRRORS", "").strip()
    if env:
        return tuple(u if u.endswith("/") else u + "/" for u in env.split(",") if u.strip())
    return MIRRORS[dataset]


def fetch(dataset: str, stem: str, dest_dir: Path) -> Path:
    """Download ``<stem>.gz`` into ``dest_dir`` from the first mirror that serves the right
    bytes; the file appears only complete and verified (:func:`edgesnn.atomic.write_bytes`)."""
    import urllib.error  # only when downloading: urllib.request costs tens of ms to import
    import urllib.request

    name = f"{stem}.gz"
    errors: list[str] = []
    for base in mirrors_for(dataset):
        url = base + name
        try:
            log.info("downloading %s", url)
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:  # noqa: S310
                data = resp.read()
            check_bytes(dataset, stem, url, data, gz=True)
        except (urllib.error.URLError, OSError, ChecksumError) as exc:
            errors.append(f"{url}: {exc}")
            continue
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / name
        write_bytes(dest, data)
        return dest
    raise DownloadError("; ".join(errors) or f"no mirror configured for {dataset}")
