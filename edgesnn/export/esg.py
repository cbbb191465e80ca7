"""``--target esg``: the validated ``.esg`` spike graph of a compressed run, as one file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

from edgesnn.atomic import write_bytes
from edgesnn.export.base import ExportError, ExportTarget
from edgesnn.graph.esg import EsgError, decode, encode, header_hash

log = logging.getLogger(__name__)


class EsgTarget(ExportTarget):
    name: ClassVar[str] = "esg"
    summary: ClassVar[str] = "the binary spike graph (.esg) the C runtime embeds, validated"

    def export(self, run_dir: Path, out: Path, *, device: str | None = None,
               **options: Any) -> dict[str, Any]:
        if options:
            raise ExportError(f"--target esg takes no options, got {', '.join(sorted(options))}")
        src = Path(run_dir) / "model.esg"
        if not src.is_file():
            raise ExportError(f"{run_dir} has no model.esg; run `edgesnn compress {run_dir}` "
                              "first")
        try:
            graph = decode(src.read_bytes())
        except EsgError as exc:
            raise ExportError(f"{src} is not a valid .esg file: {exc}") from exc
        data = encode(graph)  # canonical bytes of the validated graph
        out = Path(out)
        if out.is_dir():
            out = out / "model.esg"
        write_bytes(out, data, fsync=True)
        log.info("wrote %s (%d bytes)", out, len(data))
        return {"target": self.name, "path": str(out), "bytes": len(data),
                "model_hash": header_hash(data).hex(), "arena_bytes": graph.arena_bytes(),
                "layers": len(graph.layers)}


TARGET = EsgTarget()
