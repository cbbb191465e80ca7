"""``--target c``: a self-contained C99 firmware project for one device profile.

The project folder holds the model (``model_data.c``: the ``.esg`` bytes, 8-byte aligned),
``model_config.h`` (arena size and struct limits for this graph), ``main.c`` (static arena +
port + protocol loop), a ``Makefile`` that includes ``port/port.mk``, copies of the runtime
(``runtime/``) and of the board port (``port/``), and ``edgesnn.json`` saying what was made.
Files are rendered from the Jinja2 templates in ``exporters/c/`` (``StrictUndefined``); each
starts with a banner naming the edgesnn version and the model hash.

Before writing anything the target checks that the model fits the device: flash = ``.esg``
bytes + the runtime/port code estimate, RAM = arena + stack + the runtime's static buffers.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import jinja2

from edgesnn import __version__
from edgesnn._resources import exporters_dir, firmware_dir, proto_defines
from edgesnn.atomic import atomic_dir
from edgesnn.devices import DeviceError, DeviceProfile, load_device, write_board_files
from edgesnn.export.base import ExportError, ExportTarget
from edgesnn.graph.esg import EsgError, decode, header_hash
from edgesnn.graph.ir import EncoderKind, NeuronKind, SpikeGraph

log = logging.getLogger(__name__)

RUNTIME_SRCS = ("esnn_model.c", "esnn_infer.c", "esnn_crc.c", "esnn_cobs.c", "esnn_status.c",
                "esnn_proto.c")
#: runtime files linked with the board port, not into the portable library: they read the
#: generated esnn_board.h (the Arduino library's sketch defines its own port functions)
BOARD_SRCS = ("esnn_board.c",)
#: firmware/ports/<port>/ entries that are not part of a firmware image
_PORT_IGNORE = shutil.ignore_patterns("bench", "tools", "selftest", "build*", "*.o", "*.elf",
                                      "*.bin", "__pycache__")
#: Code the image needs besides the .esg bytes, by device kind (bytes). Measured with
#: arm-none-eabi-gcc 12.2 -Os on the lm3s6965evb project of a 784-32-10 model: text + data
#: minus the .esg size = 4,948 B (runtime 4,364 B + port/startup); rounded up to leave room
#: for other ports. tests/test_devices.py rebuilds that image and checks the bound.
CODE_ESTIMATE = {"mcu": 8192, "board": 8192, "host": 65536}
#: Static RAM of the runtime besides the arena and stack: protocol receive/transmit buffers,
#: model and result structs (lm3s6965evb, 784-32-10: bss - arena - stack = 1,312 B), rounded
#: up; checked by the same test.
STATIC_RAM_ESTIMATE = 2048
#: firmware/PROTOCOL.md: the largest input a request carries (its one home is esnn_proto.h)
PROTO_MAX_PAYLOAD = proto_defines()["MAX_PAYLOAD"]


def _hex_rows(data: bytes, per_row: int = 16) -> str:
    rows = []
    for i in range(0, len(data), per_row):
        rows.append("    " + ", ".join(f"0x{b:02x}" for b in data[i:i + per_row]) + ",")
    return "\n".join(rows)


def _make_list(items: tuple[str, ...] | list[str]) -> str:
    for item in items:
        if any(c in item for c in "\n#$"):
            raise ExportError(f"flag {item!r} contains a character make cannot take (\\n # $)")
    return " ".join(items)


def _esg_path(run_dir: Path) -> Path:
    if run_dir.is_file() and run_dir.suffix == ".esg":
        return run_dir
    path = run_dir / "model.esg"
    if not path.is_file():
        raise ExportError(f"{path} does not exist; run `edgesnn compress {run_dir}` first "
                          "(the C target deploys the integer spike graph)")
    return path


def device_arena_bytes(graph: SpikeGraph, profile: DeviceProfile) -> int:
    """The arena the firmware for ``profile`` allocates: SPEC.md section 4, or, for a profile
    with ``memory.input_block`` = B (``ESNN_INPUT_BLOCK``, esnn_infer.c), the same with one
    list of B entries instead of the two input-sized ones (``esnn_arena_bytes``)."""
    def a8(x: int) -> int:
        return (x + 7) & ~7

    block = profile.memory.input_block
    full = graph.arena_bytes()
    return full - 2 * a8(2 * graph.input_size) + a8(2 * block) if block else full


def fit_report(profile: DeviceProfile, esg_bytes: int, arena_bytes: int) -> dict[str, Any]:
    """Flash and RAM the model needs on ``profile`` against what it has."""
    code = profile.memory.code_bytes or CODE_ESTIMATE[profile.kind]
    flash_need = esg_bytes + code
    static = profile.memory.static_bytes or STATIC_RAM_ESTIMATE
    ram_need = arena_bytes + profile.memory.stack_bytes + static
    return {
        "flash_needed": flash_need, "flash_available": profile.memory.flash_bytes,
        "flash_detail": {"esg_bytes": esg_bytes, "code_estimate": code},
        "ram_needed": ram_need, "ram_available": profile.memory.ram_bytes,
        "ram_detail": {"arena_bytes": arena_bytes, "stack_bytes": profile.memory.stack_bytes,
                       "static_estimate": static},
        "model_max_bytes": profile.memory.model_max_bytes or None,
        "fits": flash_need <= profile.memory.flash_bytes
        and ram_need <= profile.memory.ram_bytes
        and esg_bytes <= (profile.memory.model_max_bytes or esg_bytes),
    }


def check_fit(profile: DeviceProfile, esg_bytes: int, arena_bytes: int) -> dict[str, Any]:
    """:func:`fit_report`, raising :class:`ExportError` with the numbers when it does not fit."""
    fit = fit_report(profile, esg_bytes, arena_bytes)
    problems = []
    if fit["flash_needed"] > fit["flash_available"]:
        problems.append(
            f"flash needs {fit['flash_needed']:,} B (model {esg_bytes:,} B + code estimate "
            f"{fit['flash_detail']['code_estimate']:,} B) but the device has "
            f"{fit['flash_available']:,} B: over by "
            f"{fit['flash_needed'] - fit['flash_available']:,} B")
    if fit["ram_needed"] > fit["ram_available"]:
        problems.append(
            f"RAM needs {fit['ram_needed']:,} B (arena {arena_bytes:,} B + stack "
            f"{profile.memory.stack_bytes:,} B + runtime buffers "
            f"{fit['ram_detail']['static_estimate']:,} B) "
            f"but the device has {fit['ram_available']:,} B: over by "
            f"{fit['ram_needed'] - fit['ram_available']:,} B")
    if fit["model_max_bytes"] and esg_bytes > fit["model_max_bytes"]:
        problems.append(f"the model is {esg_bytes:,} B but one object may hold "
                        f"{fit['model_max_bytes']:,} B on this toolchain: over by "
                        f"{esg_bytes - fit['model_max_bytes']:,} B")
    if problems:
        raise ExportError(f"model does not fit device {profile.name!r}: " + "; ".join(problems)
                          + " (prune/quantize harder, or pick a larger device)")
    return fit


def model_config(graph: SpikeGraph, profile: DeviceProfile) -> dict[str, Any]:
    """What ``model_config.h.j2`` says about ``graph`` built for ``profile``: the arena this
    build allocates (the block path's for a profile with ``memory.input_block``; at least the
    ANN baseline's), the input block, and which optional runtime parts the graph needs. Shared
    by every target that renders the template (c, arduino)."""
    if graph.input_size > PROTO_MAX_PAYLOAD:
        raise ExportError(f"input_size {graph.input_size} exceeds the {PROTO_MAX_PAYLOAD}-byte "
                          "INFER payload of firmware/PROTOCOL.md")
    arena = device_arena_bytes(graph, profile)
    if graph.ann is not None:  # the ANN baseline runs in the same arena (esnn_proto.c)
        arena = max(arena, graph.ann.arena_bytes())
    return {
        "arena_bytes": arena, "input_size": graph.input_size, "steps": graph.steps,
        "n_classes": graph.n_classes, "n_layers": len(graph.layers),
        "ann": graph.ann is not None, "input_block": profile.memory.input_block,
        "cubalif": any(layer.neuron == NeuronKind.CUBA_LIF for layer in graph.layers),
        "direct": graph.encoder.kind == EncoderKind.DIRECT,
    }


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(exporters_dir() / "c")),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              autoescape=False)


def generate_project(esg: bytes, profile: DeviceProfile, out: Path, *,
                     source: str = "") -> dict[str, Any]:
    """Write the project for the ``.esg`` bytes ``esg`` to ``out`` (replaced atomically)."""
    try:
        graph = decode(esg)
    except EsgError as exc:
        raise ExportError(f"model.esg is invalid: {exc}") from exc
    config = model_config(graph, profile)
    arena = config["arena_bytes"]
    fit = check_fit(profile, len(esg), arena)
    port_dir = firmware_dir() / "ports" / profile.build.port
    if not (port_dir / "port.mk").is_file():
        raise ExportError(f"device {profile.name!r}: port folder {port_dir} has no port.mk")
    model_hash = header_hash(esg).hex()
    banner = (f"Generated by edgesnn {__version__} for model {model_hash} on device "
              f"{profile.name}. Do not edit; re-run `edgesnn export`.")
    ctx = {
        "banner": banner, "model_hash": model_hash, "esg_bytes": len(esg),
        "hex_rows": _hex_rows(esg), "device": profile.name, "port": profile.build.port,
        "toolchain_prefix": profile.build.toolchain_prefix,
        "cflags": _make_list(profile.build.cflags), "ldflags": _make_list(profile.build.ldflags),
        "runtime_srcs": " ".join(RUNTIME_SRCS + (("esnn_ann.c",) if graph.ann else ())),
        "board_srcs": " ".join(BOARD_SRCS),
        **config,
    }
    env = _environment()
    out = Path(out)
    if out.exists() and (not out.is_dir() or (
            not (out / "edgesnn.json").is_file() and any(out.iterdir()))):
        raise ExportError(f"{out} exists and is not an edgesnn C project; "
                          "choose an empty or new folder")
    with atomic_dir(out, replace=True) as tmp:
        for name in ("main.c", "model_config.h", "model_data.c", "Makefile"):
            text = env.get_template(f"{name}.j2").render(**ctx)
            (tmp / name).write_text(text, encoding="utf-8")
        write_board_files(profile, tmp, banner)  # esnn_board.h, device.mk
        rt = tmp / "runtime"
        rt.mkdir()
        for src in sorted((firmware_dir() / "runtime").iterdir()):
            if src.suffix in (".c", ".h", ".def"):
                shutil.copy2(src, rt / src.name)
        shutil.copytree(port_dir, tmp / "port", symlinks=False, ignore=_PORT_IGNORE)
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        summary = {
            "target": "c", "path": str(out), "device": profile.name,
            "port": profile.build.port, "model_hash": model_hash, "esg_bytes": len(esg),
            "arena_bytes": arena, "edgesnn_version": __version__, "source": source,
            "fit": fit, "files": files + ["edgesnn.json"],
        }
        (tmp / "edgesnn.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n",
                                          encoding="utf-8")
        summary["bytes"] = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
    log.info("wrote C project %s for %s (%d B model, %d B arena)", out, profile.name,
             len(esg), arena)
    return summary


class CTarget(ExportTarget):
    name = "c"
    summary = "self-contained C99 firmware project (runtime + port + model) for --device"
    needs_device = True
    writes_folder = True

    def export(self, run_dir: Path, out: Path, *, device: str | None = None,
               **options: Any) -> dict[str, Any]:
        if options:
            raise ExportError(f"--target c takes no --option (got {', '.join(options)})")
        try:
            profile = load_device(device or "host")
        except DeviceError as exc:
            raise ExportError(str(exc)) from exc
        path = _esg_path(Path(run_dir))
        return generate_project(path.read_bytes(), profile, Path(out), source=str(path))


TARGET = CTarget()
