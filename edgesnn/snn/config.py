"""``SNNConfig``: everything that defines a spiking MLP, JSON-serialisable and versioned."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from edgesnn.data import ENCODERS

CONFIG_VERSION = 1
# The names of the neuron rules everywhere outside the integer IR (config, CLI, interop, the
# float LIF): the IR enums' member names in lower case (edgesnn/graph/ir.py: NeuronKind,
# ResetMode, FireRule, Readout; tests/test_lif.py holds them equal). Kept here as strings
# because building the CLI parser imports no numpy.
NEURONS = ("lif", "if", "cuba_lif")  # cuba_lif: snnTorch Synaptic (a decaying synaptic current)
RESETS = ("subtract", "zero", "subtract_delayed", "none")  # SPEC 3.2 step 4
FIRES = ("gt", "ge")  # v > threshold, v >= threshold (SpikingJelly)
READOUTS = ("count_membrane", "count")  # SPEC 3.3: membrane tie-break, or the peers' argmax
SURROGATES = ("fast_sigmoid", "arctan", "sigmoid", "triangle")
SCHEDULES = ("cosine", "step", "none")  # learning-rate schedules of the training loop
#: weight of the hidden firing rate in the training loss (TrainOptions.spike_reg, --spike-reg)
SPIKE_REG = 0.0


class ConfigError(ValueError):
    """An invalid configuration value; the message names the field and what is accepted."""


@dataclass
class SNNConfig:
    """A feed-forward spiking MLP ``input_size -> hidden... -> n_classes``.

    ``beta`` is the leak (``v <- beta * v + I``; 1 means no leak, which ``neuron="if"``
    forces), ``threshold`` the firing threshold (fires on ``v > threshold``). ``per_neuron``
    gives every neuron its own beta/threshold (else one per layer); ``learn_*`` makes them
    trainable. ``surrogate``/``slope`` shape the pseudo-derivative of the spike used in
    training (slope 5 is the measured best: see the README's accuracy recipe);
    ``detach_reset`` stops the gradient through the reset term. ``hidden`` takes a list of
    layer sizes or one size (``hidden=256`` is ``hidden=[256]``, as ``--hidden 256``).
    """

    input_size: int = 784
    hidden: list[int] = field(default_factory=lambda: [256])
    n_classes: int = 10
    steps: int = 25
    encoder: str = "rate"
    encoder_seed: int = 0x1234ABCD
    neuron: str = "lif"
    reset: str = "subtract"
    beta: float = 0.9
    threshold: float = 1.0
    learn_beta: bool = False
    learn_threshold: bool = False
    per_neuron: bool = False
    surrogate: str = "fast_sigmoid"
    slope: float = 5.0
    detach_reset: bool = True
    bias: bool = False  # nn.Linear biases: a per-neuron current added every step (SPEC 3.2)
    fire: str = "gt"  # "ge": fire on v >= threshold (SpikingJelly's rule)
    readout: str = "count_membrane"  # "count": argmax of the counts, lowest index on ties
    alpha: float = 0.5  # neuron "cuba_lif": the synaptic current's decay (snnTorch Synaptic)
    version: int = CONFIG_VERSION

    def __post_init__(self) -> None:
        if isinstance(self.hidden, int) and not isinstance(self.hidden, bool):
            self.hidden = [self.hidden]
        elif isinstance(self.hidden, tuple):
            self.hidden = list(self.hidden)

    @property
    def layer_sizes(self) -> list[int]:
        return [self.input_size, *self.hidden, self.n_classes]

    def validate(self) -> SNNConfig:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ConfigError(msg)

        need(self.version <= CONFIG_VERSION,
             f"config version {self.version} is newer than this edgesnn ({CONFIG_VERSION}); "
             "upgrade edgesnn")
        need(1 <= self.input_size <= 65535, f"input_size={self.input_size}; accepted 1..65535")
        need(isinstance(self.hidden, list) and all(
             isinstance(h, int) and not isinstance(h, bool) and 1 <= h <= 65535
             for h in self.hidden),
             f"hidden={self.hidden!r}; accepted: a layer size in 1..65535 or a list of them "
             "(e.g. 256 or [256, 128]; [] for one layer straight to the classes)")
        need(1 <= self.n_classes <= 255, f"n_classes={self.n_classes}; accepted 1..255")
        need(1 <= self.steps <= 65535, f"steps={self.steps}; accepted 1..65535")
        need(self.encoder in ENCODERS,
             f"encoder={self.encoder!r}; accepted: {', '.join(ENCODERS)}")
        need(0 <= self.encoder_seed <= 0xFFFFFFFF, f"encoder_seed={self.encoder_seed}; not uint32")
        need(self.neuron in NEURONS, f"neuron={self.neuron!r}; accepted: {', '.join(NEURONS)}")
        need(self.reset in RESETS, f"reset={self.reset!r}; accepted: {', '.join(RESETS)}")
        need(self.fire in FIRES, f"fire={self.fire!r}; accepted: {', '.join(FIRES)}")
        need(self.readout in READOUTS,
             f"readout={self.readout!r}; accepted: {', '.join(READOUTS)}")
        need(0.0 <= self.beta <= 1.0, f"beta={self.beta}; accepted: 0..1")
        need(self.neuron != "if" or self.beta == 1.0,
             f"neuron='if' has no leak, so beta must be 1.0 (got {self.beta})")
        need(self.threshold > 0, f"threshold={self.threshold}; must be > 0")
        need(0.0 <= self.alpha <= 1.0, f"alpha={self.alpha}; accepted: 0..1")
        need(self.surrogate in SURROGATES,
             f"surrogate={self.surrogate!r}; accepted: {', '.join(SURROGATES)}")
        need(self.slope > 0, f"slope={self.slope}; must be > 0")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SNNConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        version = int(data.get("version", CONFIG_VERSION))
        if version > CONFIG_VERSION:
            raise ConfigError(f"config version {version} is newer than this edgesnn "
                              f"({CONFIG_VERSION}); upgrade edgesnn")
        if unknown:
            raise ConfigError(f"unknown config field(s) {', '.join(unknown)}; "
                              f"accepted: {', '.join(sorted(known))}")
        kwargs = dict(data)
        if "hidden" in kwargs:
            kwargs["hidden"] = [int(h) for h in kwargs["hidden"]]
        return cls(**kwargs).validate()
