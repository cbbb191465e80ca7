"""The one `.esg` layout table (edgesnn/graph/esg.py) against SPEC.md, the generated C header,
the C runtime and the alignment rules.

* every record of the table has the offsets and size SPEC.md 5.1-5.4 gives;
* ``firmware/runtime/esnn_layout.h`` is exactly what the table generates, and a C program
  compiled against it sees the same offsets, record sizes and enum values as Python;
* the C runtime's validator reads no raw header offset or bare layer-kind number;
* a blob at +1, +2 or +3 bytes from 4-byte alignment is refused by ``esnn_model_init``
  (the Thumb-2 kernels' ``ldrd`` would fault on it), at +0 and +4 accepted; a 2-aligned
  in-bounds array is refused by Python and C (the conformance vector ``array_2_aligned``);
* the size arithmetic of SPEC 5.4 that QAT uses is the writer's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgesnn._resources import exporters_dir, firmware_dir
from edgesnn.build import STRICT_CFLAGS, runtime_sources
from edgesnn.compress.qat import storage_bytes
from edgesnn.graph import esg
from edgesnn.graph.ir import Storage
from edgesnn.graph.synth import random_graph

SPEC = exporters_dir() / "spikegraph" / "SPEC.md"
RUNTIME = firmware_dir() / "runtime"
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")


def _spec_offsets(section: str) -> list[int]:
    """The ``off`` column of the first table under ``### <section>`` of SPEC.md."""
    text = SPEC.read_text()
    start = text.index(f"### {section} ")
    body = text[start:text.index("\n### ", start + 4)]
    return [int(m.group(1)) for m in re.finditer(r"^\| (\d+) \|", body, re.M)]


@pytest.mark.parametrize("record", esg.RECORDS, ids=lambda r: r.c_prefix)
def test_table_matches_spec(record: esg.Record) -> None:
    offsets = [record.offset(name) for name, _ in record.fields]
    spec = _spec_offsets(record.spec)
    assert offsets == spec, (record.c_prefix, offsets, spec)
    heading = re.search(rf"### {re.escape(record.spec)} .*\((\d+) bytes", SPEC.read_text())
    if heading:
        assert int(heading.group(1)) == record.size
    assert record.struct.size == record.size


def test_generated_header_is_committed_and_current() -> None:
    path = RUNTIME / esg.C_LAYOUT_FILE
    assert path.is_file(), f"{path} missing: run tests/golden/make_vectors.py"
    assert path.read_text() == esg.c_layout_header(), (
        f"{path} differs from the layout table in edgesnn/graph/esg.py; regenerate it with "
        "`.venv/bin/python tests/golden/make_vectors.py`")


def test_header_tracks_the_table() -> None:
    """The generator reads the table: a field added to a record appears in the header."""
    extended = esg.Record("LAYER", "5.4", (*esg.LAYER.fields, ("extra", "I")))
    old = esg.RECORDS
    try:
        esg.RECORDS = (*old[:-1], extended)  # type: ignore[misc]
        text = esg.c_layout_header()
    finally:
        esg.RECORDS = old  # type: ignore[misc]
    assert "#define ESNN_LAYER_EXTRA 48u" in text and "#define ESNN_LAYER_BYTES 52u" in text


def test_c_sources_use_the_generated_names() -> None:
    model = (RUNTIME / "esnn_model.c").read_text()
    infer = (RUNTIME / "esnn_infer.c").read_text()
    code = re.sub(r"/\*.*?\*/", "", model + infer, flags=re.S)
    assert not re.search(r"\bp\[\d+\]", code), "esnn_model.c reads a raw layer-header offset"
    assert not re.search(r"\b[beg] \+ \d", code), "esnn_model.c reads a raw header offset"
    assert not re.search(r"->(neuron|reset|storage) ?[=!]= ?\d", code), "bare enum number"
    assert "65536u" not in code and "0x474E5345" not in code


def _c_probe() -> str:
    """A C program printing every offset, size and enum value the generated header defines."""
    lines = []
    for rec in esg.RECORDS:
        lines.append(f"ESNN_{rec.c_prefix}_BYTES")
        lines += [f"ESNN_{rec.c_prefix}_{name.upper()}" for name, _ in rec.fields]
    for prefix, enum in esg.ENUMS:
        lines += [f"ESNN_{prefix}_{m.name}" for m in enum]
    body = "\n".join(f'    printf("%s %lu\\n", "{n}", (unsigned long)({n}));' for n in lines)
    return f'#include <stdio.h>\n#include "esnn.h"\nint main(void)\n{{\n{body}\n    return 0;\n}}\n'


@needs_gcc
def test_c_sees_the_python_table(tmp_path: Path) -> None:
    src = tmp_path / "probe.c"
    src.write_text(_c_probe())
    exe = tmp_path / "probe"
    subprocess.run(["gcc", *STRICT_CFLAGS, f"-I{RUNTIME}", str(src), "-o", str(exe)],
                   check=True, capture_output=True, timeout=60)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True, timeout=10)
    got = dict((k, int(v)) for k, v in (line.split() for line in out.stdout.splitlines()))
    want: dict[str, int] = {}
    for rec in esg.RECORDS:
        want[f"ESNN_{rec.c_prefix}_BYTES"] = rec.size
        want.update({f"ESNN_{rec.c_prefix}_{n.upper()}": rec.offset(n) for n, _ in rec.fields})
    for prefix, enum in esg.ENUMS:
        want.update({f"ESNN_{prefix}_{m.name}": int(m) for m in enum})
    assert got == want


_ALIGN_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "esnn.h"
static uint32_t store[65536]; /* 4-byte aligned */
int main(int argc, char **argv)
{
    static esnn_model_t m;
    FILE *f = fopen(argv[1], "rb");
    uint8_t *base = (uint8_t *)store;
    size_t n;
    unsigned shift;
    (void)argc;
    if (f == NULL) return 1;
    n = fread(base + 8, 1, sizeof store - 16, f);
    fclose(f);
    for (shift = 0; shift <= 4; shift++) {
        memmove(base + shift, base + 8, n);
        printf("%u %s\n", shift, esnn_status_name(esnn_model_init(&m, base + shift, (uint32_t)n)));
        memmove(base + 8, base + shift, n);
    }
    return 0;
}
"""


@needs_gcc
def test_model_init_refuses_a_misaligned_blob(tmp_path: Path) -> None:
    src = tmp_path / "align.c"
    src.write_text(_ALIGN_C)
    exe = tmp_path / "align"
    subprocess.run(["gcc", *STRICT_CFLAGS, "-O1", f"-I{RUNTIME}", str(src),
                    *map(str, runtime_sources()), "-o", str(exe)],
                   check=True, capture_output=True, timeout=120)
    model = tmp_path / "m.esg"
    model.write_bytes(esg.encode(random_graph(9, input_size=20, hidden=(11,), n_classes=5,
                                              steps=4, storage="sparse", density=0.5)))
    out = subprocess.run([str(exe), str(model)], check=True, capture_output=True, text=True,
                         timeout=30).stdout.split()
    got = dict(zip(out[0::2], out[1::2], strict=True))
    assert got == {"0": "OK", "1": "ERR_ALIGN", "2": "ERR_ALIGN", "3": "ERR_ALIGN", "4": "OK"}


def test_two_aligned_array_vector_is_rejected_by_python() -> None:
    vec = exporters_dir() / "spikegraph" / "vectors" / "invalid"
    (path,) = vec.glob("*_array_2_aligned.esg")
    data = path.read_bytes()
    layer = esg.ENTRY.unpack(data, esg.HEADER_SIZE + esg.ENTRY_SIZE)["offset"]
    hdr = esg.LAYER.unpack(data, layer)
    # the fault is exactly a 2-aligned, in-bounds, non-overlapping threshold array
    assert hdr["off_threshold"] % 4 == 2 and hdr["threshold_count_flag"] == 0
    assert hdr["off_threshold"] + 4 <= hdr["off_leak"]
    with pytest.raises(esg.EsgError, match="off_threshold: 50 is not a multiple of 4") as exc:
        esg.decode(data)
    assert exc.value.category == "bounds"


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("storage", ["dense", "sparse"])
def test_qat_storage_bytes_is_the_writers(bits: int, storage: str) -> None:
    g = random_graph(3, input_size=30, hidden=(300,), n_classes=7, steps=2, storage=storage,
                     density=0.3, weight_bits=bits)
    data = esg.encode(g)
    for k, layer in enumerate(g.layers):
        off = esg.ENTRY.unpack(data, esg.HEADER_SIZE + esg.ENTRY_SIZE * (1 + k))
        hdr = esg.LAYER.unpack(data, off["offset"])
        thr_leak = 4 * (layer.threshold.size + layer.leak.size)
        payload = off["size"] - esg.LAYER_HEADER_SIZE - thr_leak
        kind = Storage.SPARSE if storage == "sparse" else Storage.DENSE
        # the last array is not padded inside the payload
        assert storage_bytes(layer.weights, bits, kind) == (payload + 3) & ~3
        assert hdr["weights_bytes"] == esg.weights_bytes(layer.n_in, layer.n_out, layer.nnz,
                                                         bits, kind)


def test_header_accessors() -> None:
    data = esg.encode(random_graph(1, input_size=8, hidden=(4,), n_classes=2, steps=2))
    assert esg.header_hash(data) == esg.model_hash(data) == data[32:48]
    assert esg.header_field(data, "file_size") == len(data)
    with pytest.raises(esg.EsgError, match="shorter than the 64-byte header"):
        esg.header_hash(data[:40])
    assert np.frombuffer(esg.MAGIC, np.uint8).tolist() == [0x45, 0x53, 0x4E, 0x47]
