"""Locate the non-Python parts of edgesnn (``firmware/``, ``exporters/``, ``devices/``).

In a wheel they are force-included under ``edgesnn/_share/``; in an editable checkout they
sit at the repository root, next to the ``edgesnn`` package.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PKG = Path(__file__).resolve().parent
_KINDS = ("firmware", "exporters", "devices")


@cache
def share_root() -> Path:
    """Return the folder holding ``firmware/``, ``exporters/`` and ``devices/``."""
    for candidate in (_PKG / "_share", _PKG.parent):
        if all((candidate / kind).is_dir() for kind in _KINDS):
            return candidate
    raise FileNotFoundError(
        "edgesnn resources not found: looked for firmware/, exporters/ and devices/ in "
        f"{_PKG / '_share'} (wheel) and {_PKG.parent} (checkout); reinstall edgesnn"
    )


def firmware_dir() -> Path:
    return share_root() / "firmware"


def exporters_dir() -> Path:
    return share_root() / "exporters"


def devices_dir() -> Path:
    return share_root() / "devices"


@cache
def proto_defines() -> dict[str, int]:
    """The numbers of ``firmware/runtime/esnn_proto.h`` (``#define ESNN_PROTO_<NAME> <n>``
    lines, keyed by NAME): the one home of the serial protocol's version and payload limits,
    read here by the host protocol and the C exporter."""
    import re

    text = (firmware_dir() / "runtime" / "esnn_proto.h").read_text(encoding="utf-8")
    return {m.group(1): int(m.group(2), 0) for m in
            re.finditer(r"^#define ESNN_PROTO_(\w+) (0x[0-9A-Fa-f]+|\d+)\b", text, re.M)}
