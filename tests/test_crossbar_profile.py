"""Crossbar device profiles: the shipped ones load; bad ones are rejected naming the field."""

from __future__ import annotations

import copy
import tomllib

import pytest

from edgesnn._resources import devices_dir
from edgesnn.crossbar.profile import (
    ProfileError,
    available_profiles,
    from_dict,
    load_profile,
    profile_fields,
)


def _raw(name: str = "rram-1t1r") -> dict:
    with (devices_dir() / f"{name}.toml").open("rb") as fh:
        return tomllib.load(fh)


def test_shipped_profiles_load_with_sources() -> None:
    names = available_profiles()
    assert {"rram-1t1r", "pcm"} <= set(names)
    for name in names:
        prof = load_profile(name)
        assert prof.g_min < prof.g_max and prof.levels >= 2
        for field in profile_fields():
            assert field in prof.values
        # every numeric field carries a source
        for key, value in prof.values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                assert prof.sources.get(key, "").strip(), key


@pytest.mark.parametrize("section,key,value,needle", [
    ("technology", "g_min_us", 300.0, "technology.g_min_us"),
    ("technology", "levels", 0, "technology.levels"),
    ("noise", "variation_sigma", -0.1, "noise.variation_sigma"),
    ("noise", "stuck_at_gmin", 1.5, "noise.stuck_at_gmin"),
    ("array", "rows", 0, "array.rows"),
    ("adc", "bits", 0, "adc.bits"),
    ("dac", "bits", 4, "dac.bits"),
    ("technology", "read_voltage_v", "high", "technology.read_voltage_v"),
    ("array", "cols", 127, "array.cols"),
])
def test_bad_values_rejected_naming_field(section: str, key: str, value: object,
                                          needle: str) -> None:
    raw = copy.deepcopy(_raw())
    raw[section][key] = value
    with pytest.raises(ProfileError, match=needle.replace(".", r"\.")):
        from_dict(raw)


@pytest.mark.parametrize("field", ["technology.g_max_us", "noise.drift_t0_s",
                                   "energy.adc_conversion_pj", "adc.type"])
def test_missing_field_rejected(field: str) -> None:
    raw = copy.deepcopy(_raw("pcm"))
    sec, key = field.split(".")
    del raw[sec][key]
    with pytest.raises(ProfileError, match=f"missing field {field}"):
        from_dict(raw)


def test_number_without_source_rejected() -> None:
    raw = copy.deepcopy(_raw())
    del raw["sources"]["noise.read_sigma"]
    with pytest.raises(ProfileError, match=r"noise\.read_sigma has no source"):
        from_dict(raw)


def test_overrides_are_validated() -> None:
    prof = load_profile("rram-1t1r", **{"technology.levels": 256})
    assert prof.levels == 256 and "override" in prof.sources["technology.levels"]
    with pytest.raises(ProfileError, match="technology.levels"):
        load_profile("rram-1t1r", **{"technology.levels": 1})
    with pytest.raises(ProfileError, match="unknown crossbar profile field"):
        load_profile("rram-1t1r", **{"technology.nope": 1})
    with pytest.raises(ProfileError, match="no crossbar profile"):
        load_profile("no-such-device")
