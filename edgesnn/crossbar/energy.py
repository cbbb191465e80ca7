"""Energy and latency of crossbar inferences from the events the simulator counted.

* cell reads: every mapped cell (G+ and G-) on a row driven by a spike, energy
  ``V_read^2 * G * t_read`` with the trial's actual conductances;
* ADC conversions: one per mapped differential pair of every array that has at least one
  driven row in that step (arrays with no spike are not converted);
* digital adds: accumulating the row tiles' partial sums (``active tiles - 1`` per output);
* neuron updates: every LIF neuron every step (leak, integrate, fire, reset).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgesnn.crossbar.profile import CrossbarProfile
from edgesnn.crossbar.sim import XbarResult


def breakdown(res: XbarResult, profile: CrossbarProfile) -> dict[str, Any]:
    """Mean per-inference counts and energies (pJ), with the constants used."""
    e_adc = float(profile["energy.adc_conversion_pj"])
    e_neu = float(profile["energy.neuron_update_pj"])
    e_add = float(profile["energy.digital_add_pj"])
    cells = float(np.mean(res.cell_energy_pj)) if len(res.pred) else 0.0
    adc = float(np.mean(res.adc_conversions)) * e_adc if len(res.pred) else 0.0
    neu = float(np.mean(res.neuron_updates)) * e_neu if len(res.pred) else 0.0
    add = float(np.mean(res.digital_adds)) * e_add if len(res.pred) else 0.0
    total = cells + adc + neu + add

    def mean(a: np.ndarray) -> float:
        return float(np.mean(a)) if a.size else 0.0

    return {
        "energy_per_inference_pj": total,
        "energy_breakdown": {"cell_reads_pj": cells, "adc_pj": adc, "neuron_updates_pj": neu,
                             "digital_adds_pj": add},
        "counts_per_inference": {"cell_reads": mean(res.cell_reads),
                                 "adc_conversions": mean(res.adc_conversions),
                                 "neuron_updates": mean(res.neuron_updates),
                                 "digital_adds": mean(res.digital_adds),
                                 "input_spikes": mean(res.input_spikes)},
        "energy_constants": {
            "cell_read": "V_read^2 * G * t_read per driven mapped cell "
                         f"({profile.cell_read_pj_at_gmax():.4g} pJ at G_max)",
            "adc_conversion_pj": e_adc, "neuron_update_pj": e_neu, "digital_add_pj": e_add,
            "sources": {k: profile.sources.get(f"energy.{k}", "")
                        for k in ("adc_conversion_pj", "neuron_update_pj", "digital_add_pj")},
        },
    }
