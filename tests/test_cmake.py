"""``--target cmake``: the CMake package builds with CMake and runs.

* built on its own with its arm-none-eabi toolchain file for a QEMU board (mps2-an505,
  Cortex-M33), the example firmware answers every INFER bit-exactly with golden;
* added with ``add_subdirectory`` to a user's CMake project (here for the host compiler, with
  the user's own main), the ``edgesnn`` library target links and infers like golden.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgesnn.export.base import ExportError, get_target
from edgesnn.graph.esg import write_esg
from edgesnn.graph.golden import simulate
from edgesnn.graph.synth import random_graph, random_pixels
from edgesnn.host.launch import launch
from tests.test_qemu import Link, check_bit_exact, check_hello, load_profile, need_arm_toolchain

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None,
                                reason="cmake not installed (Debian: cmake)")


def _cmake(src: Path, build: Path, *args: str) -> None:
    for cmd in (["cmake", "-S", str(src), "-B", str(build), *args],
                ["cmake", "--build", str(build), "-j2"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _run_dir(tmp_path: Path, graph: object) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_esg(graph, run_dir / "model.esg")  # type: ignore[arg-type]
    return run_dir


@pytest.mark.qemu
def test_cmake_package_runs_on_a_qemu_board(tmp_path: Path, mnist_data_dir: Path) -> None:
    need_arm_toolchain()
    from edgesnn.data import load_dataset

    graph = random_graph(7, input_size=784, hidden=(32,), n_classes=10, steps=10,
                         storage="sparse", density=0.5)
    out = tmp_path / "pkg"
    summary = get_target("cmake").export(_run_dir(tmp_path, graph), out, device="mps2-an505")
    assert summary["target"] == "cmake"
    assert {"CMakeLists.txt", "cmake/arm-none-eabi.cmake",
            "cmake/edgesnn_device.cmake"} <= set(summary["files"])
    _cmake(out, tmp_path / "build", "-DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake")
    elf = tmp_path / "build" / "edgesnn_example.elf"
    assert elf.is_file() and (tmp_path / "build" / "libedgesnn.a").is_file()
    images = load_dataset("mnist", "test", data_dir=mnist_data_dir, limit=40).images
    blob = (out / "model_data.c").read_text()
    with launch(load_profile("mps2-an505"), elf) as session:
        link = Link(session.url)
        try:
            from edgesnn.graph import esg

            check_hello(link.hello(), graph, esg.encode(graph), "mps2-an505")
            check_bit_exact(link, graph, images)
        finally:
            link.close()
    assert "0x" in blob


def test_cmake_library_drops_into_a_user_project(tmp_path: Path) -> None:
    """add_subdirectory + target_link_libraries(app edgesnn) in a host project: the user's
    main calls the runtime directly; no example and no port are built."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    graph = random_graph(4, input_size=40, hidden=(12,), n_classes=5, steps=6)
    get_target("cmake").export(_run_dir(tmp_path, graph), tmp_path / "pkg", device="host")
    pixels = random_pixels(5, 6, graph.input_size)
    app = tmp_path / "app"
    app.mkdir()
    rows = ",".join("{" + ",".join(str(int(v)) for v in row) + "}" for row in pixels)
    (app / "app.c").write_text(f"""
#include <stdio.h>
#include "esnn.h"
#include "model_config.h"
static const uint8_t px[{len(pixels)}][ESNN_INPUT_SIZE] = {{{rows}}};
static union {{ uint64_t a; uint8_t b[ESNN_ARENA_BYTES]; }} arena;
int main(void) {{
    esnn_model_t m; esnn_result_t r; unsigned k;
    esnn_status_t st = esnn_model_init(&m, esnn_model_esg, ESNN_MODEL_BYTES);
    if (st != ESNN_OK) {{ printf("init %s\\n", esnn_status_name(st)); return 1; }}
    for (k = 0; k < {len(pixels)}u; ++k) {{
        st = esnn_infer(&m, px[k], ESNN_INPUT_SIZE, arena.b, ESNN_ARENA_BYTES, &r);
        if (st != ESNN_OK) return 2;
        printf("%u %u\\n", (unsigned)r.prediction, (unsigned)r.ops[0]);
    }}
    return 0;
}}
""")
    (app / "CMakeLists.txt").write_text(f"""
cmake_minimum_required(VERSION 3.13)
project(user_app C)
add_subdirectory({tmp_path / 'pkg'} edgesnn)
add_executable(app app.c)
target_link_libraries(app PRIVATE edgesnn)
""")
    _cmake(app, tmp_path / "app-build")
    assert not (tmp_path / "app-build" / "edgesnn" / "edgesnn_example").exists()
    out = subprocess.run([str(tmp_path / "app-build" / "app")], capture_output=True, text=True,
                         check=True, timeout=30).stdout.split()
    gold = simulate(graph, pixels)
    got = np.array(out, dtype=np.int64).reshape(-1, 2)
    assert got[:, 0].tolist() == gold.pred.tolist()
    assert got[:, 1].tolist() == gold.ops[:, 0].tolist()


def test_cmake_export_refuses_a_non_project_folder(tmp_path: Path) -> None:
    graph = random_graph(4, input_size=40, hidden=(12,), n_classes=5, steps=6)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an edgesnn project"):
        get_target("cmake").export(_run_dir(tmp_path, graph), busy, device="host")
    assert (busy / "notes.txt").read_text() == "mine"
