"""Build generated firmware projects (``make`` + ``size``) and the host runtime test tool.

:func:`build_project` runs ``make`` in a folder written by ``edgesnn export --target c`` and
measures the image with the toolchain's ``size``. :func:`build_check_tool` compiles the C
runtime with ``firmware/ports/host/tools/esnn_check.c`` (validate / infer from files), the
driver the bit-exactness, conformance and fuzz-replay tests use.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgesnn._resources import firmware_dir

log = logging.getLogger(__name__)

#: flags every piece of edgesnn C is compiled with (the shop rule)
STRICT_CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                  "-fno-omit-frame-pointer", "-g")


class BuildError(RuntimeError):
    """``make``/the compiler failed or is missing; the message carries its output."""


@dataclass(frozen=True)
class BuildResult:
    """What ``size`` says about a built image (Berkeley format, bytes)."""

    elf: Path
    text: int
    data: int
    bss: int

    @property
    def flash_bytes(self) -> int:
        return self.text + self.data

    @property
    def ram_bytes(self) -> int:
        return self.data + self.bss

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["elf"] = str(self.elf)
        out["flash_bytes"] = self.flash_bytes
        out["ram_bytes"] = self.ram_bytes
        return out


def _run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
         timeout: float = 300.0) -> str:
    log.debug("run %s (in %s)", " ".join(cmd), cwd or ".")
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise BuildError(f"{cmd[0]} not found: install it or put it on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"{' '.join(cmd)} took longer than {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip()[-4000:]
        raise BuildError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def measure(elf: Path, size_tool: str = "size") -> BuildResult:
    """``size`` of one image: text, data and bss bytes."""
    out = _run([size_tool, str(elf)])
    lines = [ln.split() for ln in out.strip().splitlines()]
    if len(lines) < 2 or lines[0][:3] != ["text", "data", "bss"]:
        raise BuildError(f"unexpected output of {size_tool} {elf}: {out!r}")
    text, data, bss = (int(x) for x in lines[1][:3])
    return BuildResult(elf=elf, text=text, data=data, bss=bss)


#: the Debian packages that provide each cross compiler a profile may name
TOOLCHAIN_PACKAGES = {"arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
                      "avr-gcc": "gcc-avr avr-libc", "gcc": "gcc"}


def toolchain_package(compiler: str) -> str:
    """``apt install`` argument for ``compiler`` (its name when no package is known)."""
    return TOOLCHAIN_PACKAGES.get(Path(compiler).name, Path(compiler).name)


def _make_vars(project: Path, make: str, env: dict[str, str] | None,
               make_args: tuple[str, ...] = ()) -> dict[str, str]:
    out = _run([make, "-s", "-C", str(project), *make_args, "print-vars"], env=env)
    values: dict[str, str] = {}
    for line in out.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def build_project(project: str | os.PathLike[str], *, make_args: tuple[str, ...] = (),
                  env: dict[str, str] | None = None, clean: bool = False,
                  make: str = "make") -> BuildResult:
    """Run ``make`` in a generated project and return the image's sizes.

    ``make_args`` are extra ``VAR=value`` arguments (e.g. ``EXTRA_CFLAGS=-fsanitize=address``);
    ``clean`` rebuilds from scratch.
    """
    project = Path(project)
    if not (project / "Makefile").is_file():
        raise BuildError(f"{project} has no Makefile; generate it with "
                         "`edgesnn export RUN_DIR --target c --device NAME --out DIR`")
    if shutil.which(make) is None:
        raise BuildError(f"{make} not found: install make")
    info = _make_vars(project, make, env, make_args)
    compiler = info.get("CC", "")
    if compiler and shutil.which(compiler) is None:
        raise BuildError(f"{compiler} not found; Debian package: "
                         f"{toolchain_package(compiler)}")
    if clean:
        _run([make, "-s", "-C", str(project), *make_args, "clean"], env=env)
    _run([make, "-s", "-C", str(project), *make_args], env=env)
    target = info.get("TARGET", "")
    if not target:
        raise BuildError(f"{project}/Makefile did not report TARGET (make print-vars)")
    elf = project / target
    if not elf.is_file():
        raise BuildError(f"make succeeded but {elf} does not exist")
    return measure(elf, info.get("SIZE") or "size")


def runtime_sources(*, with_proto: bool = False) -> list[Path]:
    """The portable runtime's C files (the protocol loop only when asked)."""
    rt = firmware_dir() / "runtime"
    names = ["esnn_model.c", "esnn_infer.c", "esnn_crc.c", "esnn_cobs.c", "esnn_status.c"]
    if with_proto:
        names.append("esnn_proto.c")
    return [rt / n for n in names]


def build_check_tool(out_dir: str | os.PathLike[str], *, sanitize: bool = False,
                     cc: str = "gcc", opt: str = "-O2") -> Path:
    """Compile ``esnn_check`` (runtime + host test driver) into ``out_dir``; returns its path.

    Built with the largest limits (255 layers, 255 classes) so it accepts every valid graph.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    exe = out / ("esnn_check_asan" if sanitize else "esnn_check")
    rt = firmware_dir() / "runtime"
    tool = firmware_dir() / "ports" / "host" / "tools" / "esnn_check.c"
    cmd = [cc, *STRICT_CFLAGS, opt, f"-I{rt}", "-DESNN_MAX_LAYERS=255",
           "-DESNN_MAX_CLASSES=255"]
    if sanitize:
        cmd += list(SANITIZE_FLAGS)
    cmd += [*(str(p) for p in runtime_sources()), str(tool), "-o", str(exe)]
    _run(cmd)
    return exe
