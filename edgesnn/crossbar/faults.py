"""Stuck-at fault maps of real arrays: per-cell states, read from ``.npy`` or JSON.

States: 0 healthy, 1 stuck at ``G_min`` (SA0 / HRS), 2 stuck at ``G_max`` (SA1 / LRS).
Shape ``[arrays, rows, cols]`` in physical coordinates (array index as in the description's
``layers[].tiles[].array``). JSON form::

    {"format": "edgesnn-stuck-map", "arrays": A, "rows": R, "cols": C,
     "stuck": [{"array": a, "row": r, "col": c, "state": "gmin" | "gmax"}, ...]}
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.crossbar.sim import STUCK_GMAX, STUCK_GMIN

FORMAT = "edgesnn-stuck-map"
_STATES = {"gmin": STUCK_GMIN, "gmax": STUCK_GMAX}


class FaultMapError(ValueError):
    """A stuck-at map that cannot be read or does not fit the arrays."""


def _check(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.ndim != 3:
        raise FaultMapError(f"stuck map {name}: shape {arr.shape}; accepted: "
                            "[arrays, rows, cols]")
    if not np.issubdtype(arr.dtype, np.integer):
        raise FaultMapError(f"stuck map {name}: dtype {arr.dtype}; accepted: integers 0/1/2")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 2):
        raise FaultMapError(f"stuck map {name}: states outside 0 (ok), 1 (G_min), 2 (G_max)")
    return arr.astype(np.int8)


def from_json(doc: Any, name: str) -> np.ndarray:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise FaultMapError(f"stuck map {name}: JSON must be an object with "
                            f"format = {FORMAT!r}")
    try:
        a, r, c = int(doc["arrays"]), int(doc["rows"]), int(doc["cols"])
        out = np.zeros((a, r, c), dtype=np.int8)
        for k, cell in enumerate(doc["stuck"]):
            state = _STATES.get(cell["state"])
            if state is None:
                raise FaultMapError(f"stuck map {name}: stuck[{k}].state={cell['state']!r}; "
                                    "accepted: gmin, gmax")
            ia, ir, ic = int(cell["array"]), int(cell["row"]), int(cell["col"])
            if not (0 <= ia < a and 0 <= ir < r and 0 <= ic < c):
                raise FaultMapError(f"stuck map {name}: stuck[{k}] at ({ia}, {ir}, {ic}) is "
                                    f"outside {a}x{r}x{c}")
            out[ia, ir, ic] = state
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, FaultMapError):
            raise
        raise FaultMapError(f"stuck map {name}: malformed JSON ({exc})") from exc
    return out


def to_json(stuck: np.ndarray) -> dict[str, Any]:
    idx = np.argwhere(stuck > 0)
    inv = {v: k for k, v in _STATES.items()}
    return {"format": FORMAT, "arrays": int(stuck.shape[0]), "rows": int(stuck.shape[1]),
            "cols": int(stuck.shape[2]),
            "stuck": [{"array": int(a), "row": int(r), "col": int(c),
                       "state": inv[int(stuck[a, r, c])]} for a, r, c in idx]}


def load_stuck_map_bytes(data: bytes, name: str) -> np.ndarray:
    if name.endswith(".npy") or data[:6] == b"\x93NUMPY":
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError as exc:
            raise FaultMapError(f"stuck map {name}: not a valid .npy ({exc})") from exc
        return _check(arr, name)
    try:
        return from_json(json.loads(data.decode("utf-8")), name)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FaultMapError(f"stuck map {name}: neither .npy nor JSON ({exc})") from exc


def load_stuck_map(path: str | Path) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise FaultMapError(f"stuck map {p} does not exist")
    return load_stuck_map_bytes(p.read_bytes(), p.name)


def save_stuck_map(stuck: np.ndarray, path: str | Path) -> None:
    p = Path(path)
    if p.suffix == ".npy":
        np.save(p, stuck.astype(np.int8))
    else:
        p.write_text(json.dumps(to_json(stuck)) + "\n", encoding="utf-8")


def fit_to(stuck: np.ndarray, arrays: int, rows: int, cols: int, name: str) -> np.ndarray:
    """Check that a map covers the arrays a mapping uses (extra arrays are ignored)."""
    if stuck.shape[1:] != (rows, cols) or stuck.shape[0] < arrays:
        raise FaultMapError(f"stuck map {name} is {stuck.shape[0]}x{stuck.shape[1]}x"
                            f"{stuck.shape[2]}; the mapping needs at least {arrays} arrays of "
                            f"{rows}x{cols}")
    return stuck
