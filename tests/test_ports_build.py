"""Every MCU/board port builds a real firmware image from a generated project.

For each device profile of kind ``mcu`` or ``board`` whose cross toolchain is installed: wrap a
small random spike graph in a RUN_DIR, generate the C project with ``edgesnn.export.c``, build
it with :func:`edgesnn.build.build_project` (``-std=c99 -Wall -Wextra -Werror -pedantic``), then
check the image itself: an ARM ELF whose vector table sits at the start of the port's flash
region, whose reset vector is the Thumb address of ``Reset_Handler`` inside flash, whose
initial stack pointer is the top of the port's RAM region, and whose flash and RAM use (from
``size``) fit the profile. Physical boards also get the exact ``edgesnn flash --dry-run``
command. No hardware or emulator is needed.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgesnn.build import BuildResult, build_project
from edgesnn.cli import main as cli_main
from edgesnn.devices import DeviceProfile, list_devices, load_device
from edgesnn.export.c import TARGET as C_TARGET
from edgesnn.graph.esg import write_esg
from edgesnn.graph.synth import random_graph

EM_ARM = 40
SHF_ALLOC = 0x2


def _board_profiles() -> list[DeviceProfile]:
    """The Cortex-M profiles (MCU or board); the AVR one has tests/test_avr.py."""
    return [p for p in (load_device(n) for n in list_devices())
            if p.kind in ("mcu", "board") and p.build.toolchain_prefix == "arm-none-eabi-"]


def _params() -> list[object]:
    out: list[object] = []
    for p in _board_profiles():
        gcc = f"{p.build.toolchain_prefix}gcc"
        marks = [] if shutil.which(gcc) else [pytest.mark.skip(reason=f"{gcc} not installed")]
        out.append(pytest.param(p.name, marks=marks, id=p.name))
    return out


@dataclass(frozen=True)
class Region:
    origin: int
    length: int

    def __contains__(self, addr: int) -> bool:
        return self.origin <= addr < self.origin + self.length


def _size(text: str) -> int:
    m = re.fullmatch(r"(0x[0-9a-fA-F]+|\d+)\s*([KM]?)", text.strip())
    assert m, f"cannot read a linker-script size from {text!r}"
    value = int(m.group(1), 0)
    return value * {"": 1, "K": 1024, "M": 1024 * 1024}[m.group(2)]


def _memory_regions(linker_script: Path) -> dict[str, Region]:
    """``MEMORY { NAME (attrs) : ORIGIN = x, LENGTH = y }`` of a port's linker script."""
    text = re.sub(r"/\*.*?\*/", "", linker_script.read_text(), flags=re.S)
    regions = {}
    for m in re.finditer(r"(\w+)\s*\([rwx]+\)\s*:\s*ORIGIN\s*=\s*([^,]+),\s*LENGTH\s*=\s*(\S+)",
                         text):
        regions[m.group(1)] = Region(int(m.group(2).strip(), 0), _size(m.group(3)))
    assert {"FLASH", "RAM"} <= regions.keys(), f"{linker_script}: MEMORY needs FLASH and RAM"
    return regions


def _linker_script(profile: DeviceProfile) -> Path:
    mk = (profile.port_dir / "port.mk").read_text()
    m = re.search(r"^PORT_LD := (\S+\.ld)$", mk, flags=re.M)
    assert m, f"{profile.port_dir}/port.mk names no linker script (PORT_LD := x.ld)"
    return profile.port_dir / m.group(1)


@dataclass(frozen=True)
class Elf:
    machine: int
    entry: int
    sections: dict[str, tuple[int, int, int, int]]  # name -> (flags, addr, offset, size)
    data: bytes

    def section_words(self, name: str, count: int) -> tuple[int, ...]:
        _flags, _addr, offset, size = self.sections[name]
        assert size >= 4 * count, f"{name} holds {size} B, fewer than {count} words"
        return struct.unpack_from(f"<{count}I", self.data, offset)


def _read_elf(path: Path) -> Elf:
    """The few ELF32 little-endian fields the checks need (ELF specification, System V ABI)."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 1 and data[5] == 1, f"{path}: not ELF32 LE"
    machine, _version, entry = struct.unpack_from("<HII", data, 18)
    shoff, = struct.unpack_from("<I", data, 32)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 46)
    headers = [struct.unpack_from("<IIIIII", data, shoff + i * shentsize) for i in range(shnum)]
    str_off = headers[shstrndx][4]

    def name(off: int) -> str:
        end = data.index(b"\0", str_off + off)
        return data[str_off + off:end].decode()

    sections = {name(h[0]): (h[2], h[3], h[4], h[5]) for h in headers}
    return Elf(machine=machine, entry=entry, sections=sections, data=data)


def _symbol(profile: DeviceProfile, elf: Path, symbol: str) -> int:
    nm = f"{profile.build.toolchain_prefix}nm"
    out = subprocess.run([nm, str(elf)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == symbol:
            return int(parts[0], 16)
    raise AssertionError(f"{symbol} not in {elf}")


Builder = Callable[[str], tuple[Path, BuildResult]]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A RUN_DIR holding only ``model.esg``: a small two-layer random graph."""
    path = tmp_path_factory.mktemp("run")
    graph = random_graph(11, input_size=64, hidden=(24,), n_classes=6, steps=6,
                         storage="sparse", density=0.6)
    write_esg(graph, path / "model.esg")
    return path


@pytest.fixture(scope="module")
def built(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Builder:
    """Export + build once per device (module-wide cache): name -> (project, BuildResult)."""
    cache: dict[str, tuple[Path, BuildResult]] = {}

    def get(name: str) -> tuple[Path, BuildResult]:
        if name not in cache:
            project = tmp_path_factory.mktemp(f"fw-{name}") / "project"
            summary = C_TARGET.export(run_dir, project, device=name)
            assert summary["device"] == name and summary["fit"]["fits"]
            cache[name] = (project, build_project(project, make_args=("-j2",)))
        return cache[name]

    return get


@pytest.mark.parametrize("name", _params())
def test_port_builds_an_image_that_boots_from_flash(name: str, built: Builder) -> None:
    profile = load_device(name)
    project, res = built(name)
    elf_path = project / "firmware.elf"
    assert res.elf == elf_path and elf_path.is_file()
    # the port's common/ files arrive in the project as regular files, not links
    common = project / "port" / "common"
    assert all(p.is_file() and not p.is_symlink() for p in common.iterdir())
    assert {"cm_startup.c", "cm_regs.h", "cortexm.mk"} <= {p.name for p in common.iterdir()}

    regions = _memory_regions(_linker_script(profile))
    flash, ram = regions["FLASH"], regions["RAM"]
    elf = _read_elf(elf_path)
    assert elf.machine == EM_ARM
    flags, addr, _off, _size_ = elf.sections[".isr_vector"]
    assert flags & SHF_ALLOC and addr == flash.origin, (
        f".isr_vector at {addr:#x}, expected the start of flash {flash.origin:#x}")
    sp, reset = elf.section_words(".isr_vector", 2)
    reset_handler = _symbol(profile, elf_path, "Reset_Handler")
    assert reset & 1, f"reset vector {reset:#x} lacks the Thumb bit"
    assert reset & ~1 == reset_handler and reset_handler in flash, (
        f"reset vector {reset:#x}, Reset_Handler {reset_handler:#x}, flash {flash}")
    assert elf.entry & ~1 == reset_handler
    assert sp == ram.origin + ram.length and sp % 8 == 0, f"initial SP {sp:#x}, RAM {ram}"
    for sec in (".text", ".data", ".bss", ".stack"):
        if sec in elf.sections and elf.sections[sec][3]:
            where = flash if sec == ".text" else ram
            start, size = elf.sections[sec][1], elf.sections[sec][3]
            assert start in where and start + size <= where.origin + where.length, sec

    # the image's float ABI is the profile's: hard-float FPU builds (Reset_Handler then
    # enables CP10/CP11) carry the VFP build attributes, soft-float ones do not
    readelf = f"{profile.build.toolchain_prefix}readelf"
    attrs = subprocess.run([readelf, "-A", str(elf_path)], capture_output=True, text=True,
                           check=True).stdout
    assert ("Tag_ABI_VFP_args: VFP registers" in attrs) == profile.core.fpu, attrs

    # what `size` says fits both the linker regions and the profile
    assert 0 < res.flash_bytes <= min(flash.length, profile.memory.flash_bytes)
    assert profile.memory.stack_bytes < res.ram_bytes <= min(ram.length,
                                                             profile.memory.ram_bytes)


def test_nucleo_l4r5zi_port_constants_match_the_profile() -> None:
    """The clock tree and baud divisor the port programs agree with the profile's numbers."""
    profile = load_device("nucleo-l4r5zi")
    src = (profile.port_dir / "port_nucleo_l4r5zi.c").read_text()
    consts = {m.group(1): int(m.group(2)) for m in
              re.finditer(r"#define ESNN_L4R5_(\w+) (\d+)u", src)}
    # the clock and baud rate come from the profile (esnn_board.h); the port checks its PLL
    # setting against that clock at compile time
    assert "#if ESNN_L4R5_TARGET_HZ != ESNN_BOARD_CLOCK_HZ" in src
    consts["TARGET_HZ"] = profile.core.clock_hz
    consts["BAUD"] = profile.serial.baudrate
    hsi16 = consts["HSI16_HZ"]
    vco_in = hsi16 // consts["PLLM"]
    vco = vco_in * consts["PLLN"]
    sysclk = vco // 2  # PLLR = /2
    assert sysclk == consts["TARGET_HZ"] == profile.core.clock_hz == 120_000_000
    # RM0432 PLL limits on STM32L4+: VCO input 2.66-16 MHz, VCO output 64-344 MHz
    assert 2_660_000 <= vco_in <= 16_000_000 and 64_000_000 <= vco <= 344_000_000
    # range 1 boost: one wait state per 20 MHz of HCLK
    assert consts["FLASH_WS"] == -(-sysclk // 20_000_000) - 1 == 5
    assert consts["BAUD"] == profile.serial.baudrate
    for fck in (sysclk, consts["RESET_HZ"]):  # PLL clock, and the fallback MSI 4 MHz
        brr = round(256 * fck / consts["BAUD"])
        assert 0x300 <= brr < 1 << 20  # LPUART BRR limits
        assert abs(256 * fck / brr - consts["BAUD"]) / consts["BAUD"] < 0.01


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                    reason="arm-none-eabi-gcc not installed")
def test_nucleo_l4r5zi_image_and_flash_command(built: Builder,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    project, res = built("nucleo-l4r5zi")
    elf_path = project / "firmware.elf"
    elf = _read_elf(elf_path)
    # STM32L4R5ZI: boots from main flash at 0x08000000; stack at the top of SRAM1 (192 KB)
    assert elf.sections[".isr_vector"][1] == 0x0800_0000
    assert elf.section_words(".isr_vector", 1)[0] == 0x2000_0000 + 192 * 1024
    profile = load_device("nucleo-l4r5zi")
    assert (profile.kind, profile.core.clock_hz, profile.run.cycle_unit) == (
        "board", 120_000_000, "cycles")
    # the board's own code, not an emulator's, went in: LPUART1 init and the board name
    port_obj = project / "build" / "port" / "port_nucleo_l4r5zi.o"
    assert port_obj.is_file()
    assert b"nucleo-l4r5zi\0" in elf_path.read_bytes()

    code = cli_main(["flash", str(project), "--device", "nucleo-l4r5zi", "--dry-run", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    info = json.loads(out)
    assert info["ran"] is False and info["reason"] == "dry run"
    assert info["command"] == ["pyocd", "flash", "--target", "stm32l4r5zitx",
                               str(elf_path.resolve())]
    assert Path(info["firmware"]) == elf_path.resolve() and res.elf.is_file()


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                    reason="arm-none-eabi-gcc not installed")
def test_cortex_m0_image_is_armv6m_thumb1_only(built: Builder) -> None:
    """microbit (nRF51, Cortex-M0): an ARMv6-M image with no Thumb-2-only instruction, so the
    runtime's Thumb-2 assembly was not selected; divisions are library calls."""
    project, _res = built("microbit")
    elf = project / "firmware.elf"
    attrs = subprocess.run(["arm-none-eabi-readelf", "-A", str(elf)], capture_output=True,
                           text=True, check=True).stdout
    assert "Tag_CPU_arch: v6S-M" in attrs and "Tag_THUMB_ISA_use: Thumb-1" in attrs, attrs
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True,
                         text=True, check=True).stdout
    mnemonics = {line.split("\t")[2].split()[0] for line in dis.splitlines()
                 if line.count("\t") >= 2 and line.split("\t")[2].strip()}
    thumb2_only = {"ldrd", "strd", "sdiv", "udiv", "mla", "mls", "smull", "umull", "cbz",
                   "cbnz", "it", "ite", "itt", "ssat", "usat", "clz", "ldrex", "strex"}
    assert mnemonics and not mnemonics & thumb2_only, mnemonics & thumb2_only
    assert "__aeabi_uidiv" in dis or "__udivsi3" in dis
    # and the same runtime on the Cortex-M3 does use its Thumb-2 code
    m3 = subprocess.run(["arm-none-eabi-objdump", "-d", str(built("lm3s6965evb")[0] /
                                                             "firmware.elf")],
                        capture_output=True, text=True, check=True).stdout
    assert "\tldrd\t" in m3 or "\tldrd.w\t" in m3 or "\tudiv\t" in m3


def test_missing_cross_compiler_names_the_package(run_dir: Path, tmp_path: Path) -> None:
    """A profile whose compiler is not installed: one line naming it and its Debian package."""
    from edgesnn.build import BuildError

    project = tmp_path / "p"
    C_TARGET.export(run_dir, project, device="lm3s6965evb")
    with pytest.raises(BuildError, match=r"^nowhere-arm-none-eabi-gcc not found; Debian "
                                         r"package: nowhere-arm-none-eabi-gcc$"):
        build_project(project, make_args=("CROSS=nowhere-arm-none-eabi-",))
    with pytest.raises(BuildError, match="gcc-arm-none-eabi libnewlib-arm-none-eabi"):
        build_project(project, make_args=("CC=/nonexistent/arm-none-eabi-gcc",))
