"""The versioned JSON crossbar target description: write, validate, read back.

A description is three files side by side: ``NAME.json`` (this document, validated against
``exporters/crossbar/schema.json`` on write and on read), ``NAME.cells.npz`` (every cell's
target conductance level, the placements and the ADC ranges; its SHA-256 is in the JSON) and
``NAME.esg`` (the integer model it was made from, for the golden comparison; its SHA-256 and
model hash are in the JSON). A description whose schema version, hashes or shapes do not
match is refused.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn import __version__
from edgesnn._resources import exporters_dir
from edgesnn.atomic import write_bytes
from edgesnn.crossbar.mapping import CrossbarMapping, LayerMapping
from edgesnn.crossbar.profile import CrossbarProfile, ProfileError, from_dict
from edgesnn.crossbar.sim import InputSpec
from edgesnn.graph.esg import EsgError, decode, header_hash, model_hash
from edgesnn.graph.ir import EncoderKind, NeuronKind, SpikeGraph

SCHEMA_VERSION = "1.0"
FORMAT = "edgesnn-crossbar"


class DescriptionError(ValueError):
    """A crossbar description that is malformed, from another version, or tampered with."""


@cache
def schema() -> dict[str, Any]:
    with (exporters_dir() / "crossbar" / "schema.json").open(encoding="utf-8") as fh:
        return json.load(fh)


def validate(doc: dict[str, Any]) -> None:
    """Validate against the JSON schema; the error names the offending field path."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        path = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise DescriptionError(f"crossbar description field {path}: {err.message}")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class XbarModel:
    """A description read back: everything the simulator needs."""

    doc: dict[str, Any]
    profile: CrossbarProfile
    mapping: CrossbarMapping
    spec: InputSpec
    graph: SpikeGraph
    path: Path | None = None
    fault_map: np.ndarray | None = None


def _neuron_block(lm: LayerMapping, layer_kind: NeuronKind, profile: CrossbarProfile) -> dict:
    # One integer current unit = weight_scale levels of differential conductance read for one
    # pulse: charge = (dG * V_read * t_read) / weight_scale per unit.
    unit_fc = (profile.delta_g * 1e-6 * float(profile["technology.read_voltage_v"])
               * float(profile["technology.read_pulse_s"])) / lm.weight_scale * 1e15
    thr = [int(x) for x in lm.threshold]
    leak = [int(x) for x in lm.leak]
    return {
        "model": "IF" if layer_kind == NeuronKind.IF else "LIF",
        "threshold": thr if len(set(thr)) > 1 else thr[:1],
        "leak_q16": leak if len(set(leak)) > 1 else leak[:1],
        "reset": "zero" if lm.zero_reset else "subtract",
        "state_bits": 32,
        "comparison": "v > threshold",
        "current_unit": "integer weight units after the ADC: round(sum over row tiles of ADC "
                        "output [levels] * weight_scale)",
        "threshold_charge_fc": [t * unit_fc for t in (thr if len(set(thr)) > 1 else thr[:1])],
        "bias": None if lm.bias is None else [int(x) for x in lm.bias],
        "bias_realisation": "none" if lm.bias is None else
        "digital add of the integer bias to each neuron's current after the ADC, every step "
        "(no bias row in the array)",
    }


def _tiles(lm: LayerMapping) -> list[dict[str, Any]]:
    out = []
    rows_used = np.bincount(lm.row_slot // lm.rows, minlength=lm.row_tiles)
    pairs_used = np.bincount(lm.col_slot // lm.pairs, minlength=lm.col_tiles)
    for rt in range(lm.row_tiles):
        for ct in range(lm.col_tiles):
            out.append({"array": lm.array_index(rt, ct), "row_tile": rt, "col_tile": ct,
                        "rows_used": int(rows_used[rt]), "pairs_used": int(pairs_used[ct]),
                        "adc_range_levels": [float(x) for x in lm.adc_range[rt, ct]]})
    return out


def tool_blocks(profile: CrossbarProfile) -> tuple[dict[str, Any], dict[str, Any]]:
    """Equivalent IBM aihwkit and Sandia CrossSim settings (see MAPPING.md)."""
    bits = int(profile["adc.bits"])
    g_min, g_max = profile.g_min, profile.g_max
    rel = g_max / (g_max - g_min)
    aihwkit = {
        "InferenceRPUConfig": {
            "forward": {
                "inp_res": 1.0,
                "out_res": 1.0 / (2 ** bits - 2) if bits > 1 else 1.0,
                "out_noise": 0.0,
                "w_noise": float(profile["noise.read_sigma"]) * rel,
                "w_noise_type": "ADDITIVE_CONSTANT",
                "ir_drop": float(profile["array.wire_resistance_ohm"]),
                "out_bound": 1.0,
            },
            "mapping": {"max_input_size": profile.rows, "max_output_size": profile.cols // 2,
                        "digital_bias": False},
            "noise_model": {
                "g_converter": {"class": "SinglePairConductanceConverter", "g_max": g_max,
                                "g_min": g_min},
                "prog_noise_scale": float(profile["noise.programming_sigma"]),
                "read_noise_scale": float(profile["noise.read_sigma"]),
                "drift_nu_mean": float(profile["noise.drift_nu"]),
                "drift_nu_std": float(profile["noise.drift_nu_sigma"]),
                "t_0": float(profile["noise.drift_t0_s"]),
            },
            "drift_compensation": ("GlobalDriftCompensation"
                                   if profile["noise.drift_compensation"] else None),
        }
    }
    crosssim = {
        "core": {"style": "BALANCED", "rows_max": profile.rows, "cols_max": profile.cols // 2,
                 "weight_bits": int(np.ceil(np.log2(2 * profile.levels - 1))),
                 "balanced_style": "ONE_SIDED"},
        "xbar": {
            "device": {
                "cell_bits": float(np.log2(profile.levels)),
                "Rmin": 1e6 / g_max,
                "Rmax": (1e6 / g_min) if g_min > 0 else None,
                "Vread": float(profile["technology.read_voltage_v"]),
                "read_noise": {"enable": float(profile["noise.read_sigma"]) > 0,
                               "model": "NormalProportionalDevice",
                               "magnitude": float(profile["noise.read_sigma"])},
                "programming_error": {"enable": float(profile["noise.programming_sigma"]) > 0,
                                      "model": "NormalIndependentDevice",
                                      "magnitude": float(profile["noise.programming_sigma"])},
                "drift_error": {"enable": float(profile["noise.drift_nu"]) > 0,
                                "model": "PowerLaw", "nu": float(profile["noise.drift_nu"]),
                                "t0_s": float(profile["noise.drift_t0_s"])},
            },
            "adc": {"mvm": {"bits": bits, "model": "QuantizerADC", "calibrated_range": True}},
            "dac": {"mvm": {"bits": 1, "input_bitslicing": False}},
            "array": {"parasitics": {"enable": float(profile["array.wire_resistance_ohm"]) > 0,
                                     "Rp_row": float(profile["array.wire_resistance_ohm"]),
                                     "Rp_col": float(profile["array.wire_resistance_ohm"])}},
        },
    }
    return aihwkit, crosssim


def build_document(graph: SpikeGraph, mapping: CrossbarMapping, profile: CrossbarProfile, *,
                   esg_bytes: bytes, stem: str, seed: int, source: str,
                   adc_range_mode: str, dataset: str | None,
                   fault_map: dict[str, Any] | None = None) -> dict[str, Any]:
    aihwkit, crosssim = tool_blocks(profile)
    enc = EncoderKind(graph.encoder.kind)
    layers = []
    for lm, ly in zip(mapping.layers, graph.layers, strict=True):
        layers.append({
            "index": lm.index, "n_in": lm.n_in, "n_out": lm.n_out,
            "row_tiles": lm.row_tiles, "col_tiles": lm.col_tiles,
            "usable_pairs": lm.usable_pairs, "first_array": lm.first_array,
            "weight_scale": lm.weight_scale, "max_level": lm.max_level, "exact": lm.exact,
            "tiles": _tiles(lm), "neuron": _neuron_block(lm, NeuronKind(ly.neuron), profile),
        })
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "provenance": {
            "model_hash": model_hash(esg_bytes).hex(),
            "edgesnn_version": __version__,
            "seed": int(seed),
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "source": source,
            "esg_file": f"{stem}.esg",
            "esg_sha256": sha256_bytes(esg_bytes),
            "dataset": dataset,
        },
        "technology": profile.to_dict(),
        "inputs": {"encoder": enc.name.lower(), "encoder_seed": int(graph.encoder.seed),
                   "steps": graph.steps, "input_size": graph.input_size, "dac_bits": 1},
        "mapping": {
            "style": "differential",
            "pair_columns": "logical column j -> physical pair p: G+ on column 2p, G- on 2p+1; "
                            "weight = (level(G+) - level(G-)) * weight_scale",
            "conductance_us": "g_min_us + level * delta_g_us",
            "rows_max": profile.rows, "cols_max": profile.cols,
            "arrays_used": mapping.arrays_used, "arrays_available": mapping.arrays_available,
            "delta_g_us": profile.delta_g,
            "cells_file": f"{stem}.cells.npz",
            "cells_sha256": "0" * 64,
            "adc_bits": mapping.adc_bits, "cols_per_adc": mapping.cols_per_adc,
            "adc_range_mode": adc_range_mode,
            "fault_map": fault_map,
        },
        "layers": layers,
        "aihwkit": aihwkit,
        "crosssim": crosssim,
        "notes": list(mapping.notes),
    }


def cells_npz(mapping: CrossbarMapping) -> bytes:
    arrays: dict[str, np.ndarray] = {}
    for lm in mapping.layers:
        arrays[f"layer{lm.index}_cells"] = lm.cells
        arrays[f"layer{lm.index}_row_slot"] = lm.row_slot
        arrays[f"layer{lm.index}_col_slot"] = lm.col_slot
        arrays[f"layer{lm.index}_adc_range"] = lm.adc_range
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # not compressed: deterministic bytes, fixed SHA-256
    return buf.getvalue()


def write_description(out: Path, doc: dict[str, Any], mapping: CrossbarMapping,
                      esg_bytes: bytes, extra_files: dict[str, bytes] | None = None) -> int:
    """Write JSON + cells + esg (+ extras) atomically; returns the JSON size in bytes."""
    cells = cells_npz(mapping)
    doc["mapping"]["cells_sha256"] = sha256_bytes(cells)
    validate(doc)
    text = json.dumps(doc, indent=1, sort_keys=False, allow_nan=False).encode() + b"\n"
    folder = out.parent
    for name, data in (extra_files or {}).items():
        write_bytes(folder / name, data)
    write_bytes(folder / doc["mapping"]["cells_file"], cells)
    write_bytes(folder / doc["provenance"]["esg_file"], esg_bytes)
    write_bytes(out, text)
    return len(text)


def _read_side(folder: Path, name: str, sha: str, what: str) -> bytes:
    if Path(name).name != name:
        raise DescriptionError(f"{what} file name {name!r} must be a plain file name")
    p = folder / name
    if not p.is_file():
        raise DescriptionError(f"{what} file {p} referenced by the description is missing")
    data = p.read_bytes()
    if sha256_bytes(data) != sha:
        raise DescriptionError(f"{what} file {p}: SHA-256 mismatch with the description "
                               "(modified or from another export)")
    return data


def read_description(path: str | Path) -> XbarModel:
    """Read, validate and cross-check a description; raises :class:`DescriptionError`."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DescriptionError(f"cannot read crossbar description {p}: {exc}") from exc
    if not isinstance(doc, dict):
        raise DescriptionError(f"{p}: not a JSON object")
    ver = doc.get("schema_version")
    if not isinstance(ver, str) or ver.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise DescriptionError(f"{p}: schema_version {ver!r} not supported; accepted: "
                               f"{SCHEMA_VERSION.split('.')[0]}.x")
    validate(doc)
    prov, mp = doc["provenance"], doc["mapping"]
    esg = _read_side(p.parent, prov["esg_file"], prov["esg_sha256"], "model (.esg)")
    if model_hash(esg).hex() != prov["model_hash"] or header_hash(esg).hex() != prov["model_hash"]:
        raise DescriptionError(f"{p}: provenance.model_hash {prov['model_hash']} does not match "
                               f"the model {prov['esg_file']} ({header_hash(esg).hex()})")
    try:
        graph = decode(esg)
    except EsgError as exc:
        raise DescriptionError(f"{p}: model {prov['esg_file']}: {exc}") from exc
    cells = _read_side(p.parent, mp["cells_file"], mp["cells_sha256"], "cells (.npz)")
    try:
        profile = from_dict(doc["technology"], path=f"{p}#technology")
    except ProfileError as exc:
        raise DescriptionError(str(exc)) from exc
    npz = np.load(io.BytesIO(cells), allow_pickle=False)
    layers: list[LayerMapping] = []
    if len(doc["layers"]) != len(graph.layers):
        raise DescriptionError(f"{p}: {len(doc['layers'])} layers but the model has "
                               f"{len(graph.layers)}")
    for d, ly in zip(doc["layers"], graph.layers, strict=True):
        i = d["index"]
        try:
            lm = LayerMapping(
                index=i, n_in=d["n_in"], n_out=d["n_out"], rows=profile.rows,
                cols=profile.cols, row_tiles=d["row_tiles"], col_tiles=d["col_tiles"],
                usable_pairs=d["usable_pairs"], first_array=d["first_array"],
                weight_scale=float(d["weight_scale"]), max_level=d["max_level"],
                cells=npz[f"layer{i}_cells"], row_slot=npz[f"layer{i}_row_slot"],
                col_slot=npz[f"layer{i}_col_slot"], adc_range=npz[f"layer{i}_adc_range"],
                threshold=ly.threshold_full().astype(np.int64),
                leak=ly.leak_full().astype(np.int64), zero_reset=int(ly.reset) == 1,
                exact=bool(d["exact"]),
                bias=None if ly.bias is None else ly.bias.astype(np.int64))
        except KeyError as exc:
            raise DescriptionError(f"{p}: cells file lacks array {exc}") from exc
        if (lm.n_in, lm.n_out) != (ly.n_in, ly.n_out):
            raise DescriptionError(f"{p}: layers/{i} is {lm.n_in}x{lm.n_out}, model layer is "
                                   f"{ly.n_in}x{ly.n_out}")
        want = (lm.phys_rows, lm.col_tiles * lm.cols)
        if lm.cells.shape != want or lm.row_slot.shape != (lm.n_in,) or \
                lm.col_slot.shape != (lm.n_out,) or \
                lm.adc_range.shape[:2] != (lm.row_tiles, lm.col_tiles):
            raise DescriptionError(f"{p}: layer {i} cell arrays have inconsistent shapes")
        if lm.cells.min() < 0 or lm.cells.max() >= profile.levels:
            raise DescriptionError(f"{p}: layer {i} has cell levels outside 0..levels-1")
        layers.append(lm)
    mapping = CrossbarMapping(layers=layers, arrays_available=mp["arrays_available"],
                              adc_bits=mp["adc_bits"], cols_per_adc=mp["cols_per_adc"],
                              notes=list(doc.get("notes", [])))
    inp = doc["inputs"]
    spec = InputSpec(encoder=EncoderKind[inp["encoder"].upper()], seed=inp["encoder_seed"],
                     steps=inp["steps"], input_size=inp["input_size"])
    if (spec.steps, spec.input_size, spec.seed) != (graph.steps, graph.input_size,
                                                    int(graph.encoder.seed)):
        raise DescriptionError(f"{p}: inputs block does not match the model")
    fault = None
    fm = mp.get("fault_map")
    if fm:
        from edgesnn.crossbar.faults import load_stuck_map_bytes

        raw = _read_side(p.parent, fm["file"], fm["sha256"], "fault map")
        fault = load_stuck_map_bytes(raw, fm["file"])
    return XbarModel(doc=doc, profile=profile, mapping=mapping, spec=spec, graph=graph, path=p,
                     fault_map=fault)
