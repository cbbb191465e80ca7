"""Crossbar device profiles (``devices/<name>.toml`` with ``kind = "crossbar"``).

A profile describes one memristive technology and the array/periphery built around it:
conductance range and levels, read conditions, array size and count, ADC/DAC, every
non-ideality the simulator models, and the energy/latency constants. Every number must come
with its source in the ``[sources]`` table (key = ``section.field``). Loading rejects a
missing field, a value out of physical range or a number without a source, naming the field.
numpy-free and torch-free.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesnn._resources import devices_dir


class ProfileError(ValueError):
    """A crossbar profile that is missing a field or holds an unphysical value."""


# (section, key, type, lower, upper, lower_inclusive, upper_inclusive)
_NUM = float
_FIELDS: tuple[tuple[str, str, type, float, float, bool, bool], ...] = (
    ("technology", "g_min_us", _NUM, 0.0, math.inf, True, False),
    ("technology", "g_max_us", _NUM, 0.0, math.inf, False, False),
    ("technology", "levels", int, 2, 65536, True, True),
    ("technology", "read_voltage_v", _NUM, 0.0, 5.0, False, True),
    ("technology", "read_pulse_s", _NUM, 0.0, 1e-3, False, True),
    ("array", "rows", int, 1, 65536, True, True),
    ("array", "cols", int, 2, 65536, True, True),
    ("array", "arrays", int, 1, 1 << 24, True, True),
    ("array", "spare_cols", int, 0, 65536, True, True),
    ("array", "wire_resistance_ohm", _NUM, 0.0, 1e6, True, True),
    ("adc", "bits", int, 1, 24, True, True),
    ("adc", "cols_per_adc", int, 1, 65536, True, True),
    ("adc", "conversion_s", _NUM, 0.0, 1e-3, False, True),
    ("dac", "bits", int, 1, 1, True, True),
    ("noise", "programming_sigma", _NUM, 0.0, 10.0, True, True),
    ("noise", "read_sigma", _NUM, 0.0, 10.0, True, True),
    ("noise", "variation_sigma", _NUM, 0.0, 10.0, True, True),
    ("noise", "stuck_at_gmin", _NUM, 0.0, 1.0, True, True),
    ("noise", "stuck_at_gmax", _NUM, 0.0, 1.0, True, True),
    ("noise", "drift_nu", _NUM, 0.0, 1.0, True, True),
    ("noise", "drift_nu_sigma", _NUM, 0.0, 1.0, True, True),
    ("noise", "drift_t0_s", _NUM, 0.0, math.inf, False, False),
    ("energy", "adc_conversion_pj", _NUM, 0.0, 1e6, True, True),
    ("energy", "neuron_update_pj", _NUM, 0.0, 1e6, True, True),
    ("energy", "digital_add_pj", _NUM, 0.0, 1e6, True, True),
    ("energy", "neuron_update_s", _NUM, 0.0, 1e-3, True, True),
)
_STRINGS = (("technology", "cell"), ("technology", "material"), ("adc", "type"))
_BOOLS = (("noise", "drift_compensation"),)
_CELLS = ("1T1R", "1R", "1S1R", "2T2R")
_ADC_TYPES = ("SAR", "flash", "ramp", "sigma-delta", "current-integrating")

NUMERIC_FIELDS = tuple(f"{s}.{k}" for s, k, *_ in _FIELDS)


@dataclass(frozen=True)
class CrossbarProfile:
    """A validated crossbar technology. ``values`` maps ``section.key`` to its value."""

    name: str
    description: str
    values: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)
    path: str | None = None

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    # Convenience accessors used everywhere in the package.
    @property
    def g_min(self) -> float:
        return float(self.values["technology.g_min_us"])

    @property
    def g_max(self) -> float:
        return float(self.values["technology.g_max_us"])

    @property
    def levels(self) -> int:
        return int(self.values["technology.levels"])

    @property
    def delta_g(self) -> float:
        """Conductance step between adjacent programmable levels, µS."""
        return (self.g_max - self.g_min) / (self.levels - 1)

    @property
    def rows(self) -> int:
        return int(self.values["array.rows"])

    @property
    def cols(self) -> int:
        return int(self.values["array.cols"])

    @property
    def pairs_per_array(self) -> int:
        """Logical (differential-pair) columns one array offers after the spare columns."""
        return (self.cols - int(self.values["array.spare_cols"])) // 2

    def cell_read_pj_at_gmax(self) -> float:
        """V_read^2 * G_max * t_read in pJ (energy of one read of a fully-on cell)."""
        v = float(self.values["technology.read_voltage_v"])
        t = float(self.values["technology.read_pulse_s"])
        return v * v * self.g_max * 1e-6 * t * 1e12

    def replace(self, **overrides: Any) -> CrossbarProfile:
        """A copy with ``section.key`` (or ``section__key``) values replaced, re-validated."""
        vals = dict(self.values)
        srcs = dict(self.sources)
        for key, value in overrides.items():
            dotted = key.replace("__", ".")
            if dotted not in vals:
                raise ProfileError(f"unknown crossbar profile field {dotted!r}; accepted: "
                                   + ", ".join(sorted(vals)))
            vals[dotted] = value
            srcs[dotted] = f"override ({value!r})"
        return from_dict(_nest(self.name, self.description, vals, srcs), path=self.path)

    def to_dict(self) -> dict[str, Any]:
        return _nest(self.name, self.description, self.values, self.sources)


def _nest(name: str, description: str, values: dict[str, Any],
          sources: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "description": description, "kind": "crossbar"}
    for dotted, value in values.items():
        sec, key = dotted.split(".", 1)
        out.setdefault(sec, {})[key] = value
    out["sources"] = dict(sources)
    return out


def from_dict(data: dict[str, Any], *, path: str | None = None) -> CrossbarProfile:
    """Validate a parsed profile; raises :class:`ProfileError` naming the bad field."""
    where = f"crossbar profile {path or data.get('name', '?')}"
    if data.get("kind") != "crossbar":
        raise ProfileError(f"{where}: kind={data.get('kind')!r}; a crossbar profile needs "
                           "kind = \"crossbar\"")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ProfileError(f"{where}: field 'name' missing or not a string")
    sources = data.get("sources", {})
    if not isinstance(sources, dict):
        raise ProfileError(f"{where}: [sources] must be a table of strings")
    values: dict[str, Any] = {}

    def get(sec: str, key: str) -> Any:
        table = data.get(sec)
        if not isinstance(table, dict) or key not in table:
            raise ProfileError(f"{where}: missing field {sec}.{key}")
        return table[key]

    for sec, key, typ, lo, hi, lo_in, hi_in in _FIELDS:
        dotted = f"{sec}.{key}"
        value = get(sec, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProfileError(f"{where}: {dotted}={value!r} is not a number")
        if typ is int and (not float(value).is_integer()):
            raise ProfileError(f"{where}: {dotted}={value!r} must be an integer")
        value = int(value) if typ is int else float(value)
        if not math.isfinite(value) or (value < lo if lo_in else value <= lo) or (
                value > hi if hi_in else value >= hi):
            lb = "[" if lo_in else "("
            ub = "]" if hi_in else ")"
            raise ProfileError(f"{where}: {dotted}={value!r} out of physical range "
                               f"{lb}{lo}, {hi}{ub}")
        src = sources.get(dotted)
        if not isinstance(src, str) or not src.strip():
            raise ProfileError(f"{where}: {dotted} has no source; add it to [sources] as "
                               f"\"{dotted}\" = \"...\"")
        values[dotted] = value
    for sec, key in _STRINGS:
        value = get(sec, key)
        if not isinstance(value, str) or not value:
            raise ProfileError(f"{where}: {sec}.{key} must be a non-empty string")
        values[f"{sec}.{key}"] = value
    for sec, key in _BOOLS:
        value = get(sec, key)
        if not isinstance(value, bool):
            raise ProfileError(f"{where}: {sec}.{key} must be true or false")
        values[f"{sec}.{key}"] = value
    # Cross-field physics.
    if values["technology.g_min_us"] >= values["technology.g_max_us"]:
        raise ProfileError(f"{where}: technology.g_min_us={values['technology.g_min_us']} must "
                           f"be < technology.g_max_us={values['technology.g_max_us']}")
    if values["technology.cell"] not in _CELLS:
        raise ProfileError(f"{where}: technology.cell={values['technology.cell']!r}; accepted: "
                           + ", ".join(_CELLS))
    if values["adc.type"] not in _ADC_TYPES:
        raise ProfileError(f"{where}: adc.type={values['adc.type']!r}; accepted: "
                           + ", ".join(_ADC_TYPES))
    if values["noise.stuck_at_gmin"] + values["noise.stuck_at_gmax"] > 1.0:
        raise ProfileError(f"{where}: noise.stuck_at_gmin + noise.stuck_at_gmax exceeds 1")
    if values["array.cols"] % 2 or values["array.spare_cols"] % 2:
        raise ProfileError(f"{where}: array.cols={values['array.cols']} and array.spare_cols="
                           f"{values['array.spare_cols']} must be even (differential pairs)")
    if (values["array.cols"] - values["array.spare_cols"]) < 2:
        raise ProfileError(f"{where}: array.spare_cols={values['array.spare_cols']} leaves "
                           "fewer than 2 columns (one differential pair) per array")
    description = str(data.get("description", ""))
    return CrossbarProfile(name=name, description=description, values=values,
                           sources={k: str(v) for k, v in sources.items()}, path=path)


def available_profiles() -> list[str]:
    """Names of the crossbar profiles shipped in ``devices/``."""
    names = []
    for p in sorted(devices_dir().glob("*.toml")):
        try:
            with p.open("rb") as fh:
                if tomllib.load(fh).get("kind") == "crossbar":
                    names.append(p.stem)
        except (OSError, tomllib.TOMLDecodeError):
            continue
    return names


def load_profile(name_or_path: str | Path, **overrides: Any) -> CrossbarProfile:
    """Load ``devices/<name>.toml`` (or a path to a TOML file) and validate it."""
    p = Path(name_or_path)
    if p.suffix != ".toml":
        p = devices_dir() / f"{name_or_path}.toml"
    if not p.is_file():
        raise ProfileError(f"no crossbar profile {name_or_path!r}; available: "
                           + (", ".join(available_profiles()) or "none"))
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"crossbar profile {p}: invalid TOML: {exc}") from exc
    prof = from_dict(data, path=str(p))
    return prof.replace(**overrides) if overrides else prof


def profile_fields() -> list[str]:
    """Every field a profile must define (``section.key``)."""
    return [*NUMERIC_FIELDS, *(f"{s}.{k}" for s, k in _STRINGS),
            *(f"{s}.{k}" for s, k in _BOOLS)]


__all__ = ["CrossbarProfile", "ProfileError", "available_profiles", "from_dict",
           "load_profile", "profile_fields"]
