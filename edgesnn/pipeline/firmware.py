"""Firmware for a device profile: export the C project, build it, and reuse an image only when
everything it was built from is unchanged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

STAMP = ".edgesnn-build.json"


def firmware_dir_for(run_dir: Path, device: str) -> Path:
    return Path(run_dir) / "firmware" / device


def firmware_inputs_digest(run_dir: Path, device: str) -> str:
    """SHA-256 over everything a generated firmware depends on: the model, the device
    profile, the runtime and the port sources, and the edgesnn version (so an upgrade or an
    edited runtime rebuilds instead of reusing a stale image)."""
    from edgesnn import __version__
    from edgesnn._resources import devices_dir, exporters_dir, firmware_dir
    from edgesnn.devices import load_device

    profile = load_device(device)
    h = hashlib.sha256(__version__.encode())
    roots = [firmware_dir() / "runtime", firmware_dir() / "ports" / profile.build.port,
             exporters_dir() / "c"]
    files = [Path(run_dir) / "model.esg"]
    candidate = devices_dir() / f"{device}.toml"
    files.append(candidate if candidate.exists() else Path(device))
    for root in roots:
        if root.is_dir():
            files += sorted(p for p in root.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def current_firmware(run_dir: Path, device: str) -> dict[str, Any] | None:
    """The build stamp of an image built from exactly the current inputs, else None."""
    stamp = firmware_dir_for(run_dir, device) / STAMP
    if not stamp.exists():
        return None
    info = json.loads(stamp.read_text())
    if info.get("inputs") != firmware_inputs_digest(run_dir, device):
        return None
    return info if Path(info.get("elf", "")).exists() else None


def firmware_for(run_dir: Path, device: str) -> tuple[Path, dict[str, Any]]:
    """Export the C project for ``device`` and build it, unless an image built from exactly
    the same inputs (:func:`firmware_inputs_digest`) is already there."""
    from edgesnn.atomic import write_json
    from edgesnn.build import build_project
    from edgesnn.export.base import get_target

    info = current_firmware(run_dir, device)
    if info is not None:
        return Path(info["elf"]), info
    out = firmware_dir_for(run_dir, device)
    get_target("c").export(Path(run_dir), out, device=device)
    res = build_project(out)
    info = {"elf": str(res.elf), "flash_bytes": res.flash_bytes, "ram_bytes": res.ram_bytes,
            "inputs": firmware_inputs_digest(run_dir, device)}
    write_json(out / STAMP, info)
    return Path(res.elf), info
