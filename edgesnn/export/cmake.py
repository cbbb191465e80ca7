"""``--target cmake``: the C project of ``--target c`` as a CMake package.

The folder holds everything ``--target c`` writes (model, runtime, board port, generated
board files, ``main.c``, ``Makefile``) plus:

* ``CMakeLists.txt``: a library target ``edgesnn`` (model + runtime) that drops into any
  CMake firmware project with ``add_subdirectory`` + ``target_link_libraries``, and, when the
  folder is built on its own, the example firmware ``edgesnn_example`` (``main.c`` + the
  device's board port, with the profile's core flags);
* ``cmake/edgesnn_device.cmake``: the profile's flags and the port's sources and flags;
* ``cmake/<prefix>.cmake``: a toolchain file for the profile's cross compiler
  (``arm-none-eabi.cmake``), none for the host.

The port's sources and flags are read from its ``port.mk`` through ``make print-port-vars``
(one home: the make build and the CMake build compile the same files with the same flags).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jinja2

from edgesnn import __version__
from edgesnn._resources import exporters_dir
from edgesnn.atomic import atomic_dir
from edgesnn.devices import DeviceProfile, load_device
from edgesnn.export.base import ExportError, ExportTarget
from edgesnn.export.c import BOARD_SRCS, RUNTIME_SRCS
from edgesnn.export.c import TARGET as C_TARGET

log = logging.getLogger(__name__)

#: CMAKE_SYSTEM_PROCESSOR for each cross prefix a profile may name
PROCESSORS = {"arm-none-eabi-": "arm", "avr-": "avr"}


def _cmake_words(items: list[str], project: Path) -> str:
    """Flags as a CMake list, with the project's absolute path turned into ${EDGESNN_DIR}."""
    out = []
    for item in items:
        if any(c in item for c in '"\\;$\n'):
            raise ExportError(f"flag {item!r} contains a character CMake would reinterpret")
        out.append(item.replace(str(project), "${EDGESNN_DIR}"))
    return " ".join(out)


def port_vars(project: Path) -> dict[str, list[str]]:
    """PORT_SRCS / PORT_CFLAGS / PORT_LDFLAGS of a generated C project (``make``)."""
    if shutil.which("make") is None:
        raise ExportError("--target cmake reads the board port's port.mk with make, which is "
                          "not installed (Debian: apt install make)")
    proc = subprocess.run(["make", "-s", "-C", str(project), "print-port-vars"],
                          capture_output=True, text=True, check=False, timeout=60)
    if proc.returncode != 0:
        raise ExportError(f"make print-port-vars failed in {project}: {proc.stderr.strip()}")
    values = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.split()
    missing = {"PORT_SRCS", "PORT_CFLAGS", "PORT_LDFLAGS"} - set(values)
    if missing:
        raise ExportError(f"make print-port-vars in {project} did not print {sorted(missing)}")
    return values


def write_cmake_files(project: Path, profile: DeviceProfile, banner: str) -> list[str]:
    """Add CMakeLists.txt and cmake/*.cmake to a generated C project; their paths."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(exporters_dir() / "cmake")),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    port = port_vars(project)
    prefix = profile.build.toolchain_prefix
    toolchain = f"{prefix.rstrip('-')}.cmake" if prefix else ""
    ctx = {
        "banner": banner, "device": profile.name, "runtime_srcs": RUNTIME_SRCS,
        "board_srcs": BOARD_SRCS,
        "toolchain_file": toolchain, "suffix": ".elf" if prefix else "",
        "device_cflags": _cmake_words(list(profile.build.cflags), project),
        "device_ldflags": _cmake_words(list(profile.build.ldflags), project),
        "port_srcs": port["PORT_SRCS"],
        "port_cflags": _cmake_words(port["PORT_CFLAGS"], project),
        "port_ldflags": _cmake_words(port["PORT_LDFLAGS"], project),
        "prefix": prefix, "processor": PROCESSORS.get(prefix, prefix.split("-")[0]),
    }
    (project / "cmake").mkdir()
    written = {"CMakeLists.txt": "CMakeLists.txt.j2",
               "cmake/edgesnn_device.cmake": "edgesnn_device.cmake.j2"}
    if toolchain:
        written[f"cmake/{toolchain}"] = "toolchain.cmake.j2"
    for name, template in written.items():
        (project / name).write_text(env.get_template(template).render(**ctx), encoding="utf-8")
    return sorted(written)


class CMakeTarget(ExportTarget):
    name = "cmake"
    summary = ("CMake package: library target `edgesnn` + example firmware for --device, with "
               "a toolchain file")
    needs_device = True
    writes_folder = True

    def export(self, run_dir: Path, out: Path, *, device: str | None = None,
               **options: Any) -> dict[str, Any]:
        if options:
            raise ExportError(f"--target cmake takes no --option (got {', '.join(options)})")
        out = Path(out)
        if out.exists() and (not out.is_dir() or (
                not (out / "edgesnn.json").is_file() and any(out.iterdir()))):
            raise ExportError(f"{out} exists and is not an edgesnn project; choose an empty "
                              "or new folder")
        with atomic_dir(out, replace=True) as tmp:
            inner = tmp / "c"
            summary = C_TARGET.export(run_dir, inner, device=device)  # validates the device
            for child in inner.iterdir():
                child.rename(tmp / child.name)
            inner.rmdir()
            profile = load_device(summary["device"])
            banner = (f"Generated by edgesnn {__version__} for model {summary['model_hash']} "
                      f"on device {profile.name}. Do not edit; re-run `edgesnn export "
                      "--target cmake`.")
            added = write_cmake_files(tmp, profile, banner)
            summary.update(target="cmake", path=str(out),
                           files=sorted(set(summary["files"]) | set(added)))
            (tmp / "edgesnn.json").write_text(json.dumps(summary, indent=2, sort_keys=True)
                                              + "\n", encoding="utf-8")
            summary["bytes"] = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        log.info("wrote CMake package %s for %s", out, profile.name)
        return summary


TARGET = CMakeTarget()
