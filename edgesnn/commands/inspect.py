"""``edgesnn inspect FILE.esg [--json]``: what is inside a spike graph and what it needs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edgesnn.cli import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="show the layers, sizes and RAM needs of a .esg spike graph",
        description="Validate FILE.esg and show its layers, shapes, bit widths, storage, "
        "sparsity, bytes per section, the RAM (arena) the C runtime needs and the model hash.",
    )
    p.add_argument("file", type=Path, metavar="FILE.esg",
                   help="a .esg file, or a run directory (its model.esg)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _load(path: Path) -> tuple[Path, dict[str, Any]]:
    from edgesnn.graph.esg import EsgError, describe

    if path.is_dir():
        if not (path / "model.esg").is_file():
            raise CliError(f"{path} is a folder without model.esg; give FILE.esg, or run "
                           f"`edgesnn compress {path}` first")
        path = path / "model.esg"  # a run directory: its compressed model
    if not path.is_file():
        raise CliError(f"{path} does not exist")
    try:
        return path, describe(path.read_bytes())
    except EsgError as exc:
        raise CliError(f"{path} is not a valid .esg file ({exc.category}): {exc}") from exc


def _print_rich(path: Path, info: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(f"[bold]{path}[/bold]  .esg {info['version']}  {info['file_bytes']} bytes  "
                  f"hash {info['model_hash']}")
    console.print(f"input {info['input_size']}  steps {info['steps']}  encoder "
                  f"{info['encoder']} (seed 0x{info['encoder_seed']:08x})  classes "
                  f"{info['n_classes']}  readout: {info['readout']}")
    layers = Table(title="layers")
    for col in ("#", "name", "shape", "neuron", "weights", "nnz", "sparsity", "threshold",
                "leak", "bytes"):
        layers.add_column(col, justify="right" if col in ("#", "nnz", "bytes") else "left")
    for lay in info["layers"]:
        storage = lay["storage"].lower() + (f"/idx{lay['index_bits']}" if lay["index_bits"]
                                             else "")
        layers.add_row(str(lay["index"]), lay["name"], f"{lay['n_in']}x{lay['n_out']}",
                       f"{lay['neuron']} {lay['reset'].lower()}",
                       f"int{lay['weight_bits']} {storage}", str(lay["nnz"]),
                       f"{100 * lay['sparsity']:.1f}%",
                       _range(lay["threshold"], lay["threshold_range"]),
                       _range(lay["leak"], lay["leak_range"]), str(lay["bytes"]))
    console.print(layers)
    sections = Table(title="sections")
    for col in ("kind", "offset", "bytes", "crc32"):
        sections.add_column(col)
    for s in info["sections"]:
        sections.add_row(s["kind"], str(s["offset"]), str(s["bytes"]), s["crc32"])
    console.print(sections)
    console.print(f"weights {info['nonzero_weights']}/{info['weights']} nonzero; flash (the "
                  f".esg bytes) {info['file_bytes']} B; RAM arena {info['arena_bytes']} B")
    if info["metadata"]:
        keys = ", ".join(sorted(info["metadata"]))
        console.print(f"metadata: {keys}")


def _range(value: Any, rng: list[int]) -> str:
    return f"{rng[0]}..{rng[1]}" if value == "per-neuron" else str(value)


def run(args: argparse.Namespace) -> int:
    path, info = _load(args.file)
    if args.json:
        print(json.dumps({"path": str(path), **info}, sort_keys=True))
    else:
        _print_rich(path, info)
    return 0
