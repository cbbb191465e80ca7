"""The neuron models: one definition per model, from which every implementation takes its rule.

A neuron model is a :class:`NeuronModel` in :data:`MODELS`: its name (the ``.esg`` enum and the
config / CLI name), its per-neuron states (int32 words of the C arena, SPEC.md 4), its
parameters with their integer fields in the ``.esg`` LAYER record (SPEC.md 5.4), and the names
the peers and NIR give it. Its integer time step (SPEC.md 3.2 steps 2.2-2.4) is written once,
in :func:`step`, over a small set of arithmetic primitives (:class:`Arith`):

* :class:`NumpyInt` (here): int64 numpy arrays, the golden simulator and the crossbar periphery;
* ``edgesnn.compress.qat.TorchInt``: float64 torch tensors holding integers, with
  straight-through gradients and the surrogate spike (the QAT forward pass);
* ``edgesnn.snn.lif.TorchFloat``: the float recurrence of training and of the peers (snnTorch's
  operation order), where ``leak`` is ``beta * x`` and nothing saturates.

* ``edgesnn.interop.onnx_graph._OnnxArith``: symbolic ONNX tensors (int64 or float32), so the
  ONNX builders write no neuron rule of their own.

Each integer backend computes every primitive exactly (integers below 2**53 in float64), so
golden and QAT agree bit for bit by construction; ``tests/test_golden.py`` and
``tests/test_qat.py`` hold them to it. From the table come: the IR's parameter validation and
equality (``ir.Layer``), the ``.esg`` fields of parameters beyond the LAYER record (the
LAYER_EXT record, its reader and writer in ``esg.py``), the arena's state words (SPEC.md 4),
and, generated into ``firmware/runtime/esnn_layout.h`` (:func:`c_defines`), the neuron enum,
the per-model state counts and which models carry LAYER_EXT. The C runtime's fire / leak pass
(``firmware/runtime/esnn_infer.c``) is the one hand-written twin of :func:`step`; the C =
golden tests cover every model, reset and fire rule (host, Cortex-M3 in QEMU, AVR in simavr).
``reference_simulate`` in ``golden.py`` stays an independent transcription of SPEC.md: it is
the oracle the shared step is checked against.

Adding a model: a :class:`NeuronKind` member, its :class:`Param` s and :class:`NeuronModel`
here and its lines in :func:`step` (with any new :class:`State` / :class:`LayerRule` field);
an ``ir.Layer`` attribute per new parameter; SPEC.md 3.2 / 4 / 5.4.1; the C twin
(``esnn.h`` layer field, ``esnn_model.c`` array check, ``esnn_infer.c`` fire pass); the QAT
buffer of a new parameter (``compress/qat.py``) and the reference simulator's lines.

numpy only (``graph/`` imports no torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

Q16_ONE = 1 << 16  # leak multiplier meaning "no leak" (IF neuron)
INT32_MIN = -(1 << 31)  # membranes, thresholds and currents are int32 (SPEC.md 2)
INT32_MAX = (1 << 31) - 1


class NeuronKind(IntEnum):
    """The neuron model of a layer (``.esg`` LAYER ``neuron``; :data:`MODELS` describes each)."""

    LIF = 0
    IF = 1
    CUBA_LIF = 2  # a synaptic-current state with its own decay (snnTorch Synaptic, NIR CubaLIF)


class ResetMode(IntEnum):
    """What a spike does to its membrane (SPEC.md 3.2 step 4)."""

    SUBTRACT = 0  # v - theta in the step that fired (Norse, SpikingJelly soft reset)
    ZERO = 1  # v = 0 (snnTorch "zero", Norse v_reset = 0, SpikingJelly v_reset = 0)
    SUBTRACT_DELAYED = 2  # theta subtracted in the next step, after its leak (snnTorch Leaky
    #                       reset_mechanism="subtract", its default reset_delay=True)
    NONE = 3  # no reset (snnTorch reset_mechanism="none")


class FireRule(IntEnum):
    """The threshold comparison (SPEC.md 3.2 step 3)."""

    GT = 0  # v > theta (edgesnn, snnTorch, Norse, NIR)
    GE = 1  # v >= theta (SpikingJelly)


@dataclass(frozen=True)
class Param:
    """One per-layer parameter array of a neuron model: the IR ``Layer`` attribute, the ``.esg``
    LAYER field holding its offset, its element type and range, and its count flag."""

    name: str
    esg_offset: str
    dtype: str  # numpy little-endian code of the stored elements
    lo: int
    hi: int
    count_flag: str  # LAYER field: 0 = one value, 1 = n_out values
    doc: str


THRESHOLD = Param("threshold", "off_threshold", "<i4", 0, INT32_MAX, "threshold_count_flag",
                  "int32 threshold theta, v > theta fires (SPEC.md 3.2 step 3)")
LEAK = Param("leak", "off_leak", "<u4", 0, Q16_ONE, "leak_count_flag",
             "membrane leak beta_q, Q0.16: leak(v) = (v * beta_q + 32768) >> 16")
SYN_LEAK = Param("syn_leak", "off_syn_leak", "<u4", 0, Q16_ONE, "syn_leak_count_flag",
                 "synaptic-current leak alpha_q, Q0.16, the same rounding as the membrane's")


@dataclass(frozen=True)
class NeuronModel:
    """One neuron model: everything the simulator, QAT, C, the ``.esg`` reader / writer and the
    interop builders need to know about it besides :func:`step`."""

    kind: NeuronKind
    states: tuple[str, ...]  # per-neuron int32 states, in arena order (SPEC.md 4)
    params: tuple[Param, ...]
    nir: str  # the NIR node type it is exported as / imported from
    peers: str  # what the peers call it (documentation, error messages)
    fixed_leak: int | None = None  # every leak must equal this (IF: Q16_ONE, no leak)

    @property
    def name(self) -> str:
        """Config / CLI / metadata name: the enum member in lower case."""
        return self.kind.name.lower()

    def check(self, leak: np.ndarray) -> str | None:
        """What is wrong with a layer of this model (None if nothing): the model's own
        constraints beyond the parameters' ranges."""
        if self.fixed_leak is not None and np.any(np.asarray(leak) != self.fixed_leak):
            return (f"an {self.kind.name} neuron must have leak == {self.fixed_leak} "
                    "(no leak)")
        return None


#: every neuron model, by kind: the one table the rest of edgesnn reads
MODELS: dict[NeuronKind, NeuronModel] = {
    NeuronKind.LIF: NeuronModel(NeuronKind.LIF, ("v",), (THRESHOLD, LEAK), "LIF",
                                "snnTorch Leaky, Norse LIFBoxCell, SpikingJelly LIFNode"),
    NeuronKind.IF: NeuronModel(NeuronKind.IF, ("v",), (THRESHOLD, LEAK), "IF",
                               "SpikingJelly IFNode; snnTorch Leaky(beta=1)",
                               fixed_leak=Q16_ONE),
    NeuronKind.CUBA_LIF: NeuronModel(NeuronKind.CUBA_LIF, ("v", "syn"), (THRESHOLD, LEAK, SYN_LEAK),
                                     "CubaLIF", "snnTorch Synaptic, Norse LIFCell"),
}


#: every parameter of any model (the IR attributes a layer may carry)
ALL_PARAMS: tuple[Param, ...] = tuple(dict.fromkeys(p for m in MODELS.values() for p in m.params))
#: the parameters the 48-byte LAYER record holds; the others are stored through the LAYER_EXT
#: extension that follows it (SPEC.md 5.4.1), one offset and one count flag each
BASE_PARAMS: tuple[Param, ...] = (THRESHOLD, LEAK)
EXT_PARAMS: tuple[Param, ...] = tuple(p for p in ALL_PARAMS if p not in BASE_PARAMS)


def ext_params(kind: int | NeuronKind) -> tuple[Param, ...]:
    """The parameters of ``kind`` stored through the LAYER_EXT extension (none: no extension)."""
    return tuple(p for p in model(kind).params if p in EXT_PARAMS)


def model(kind: int | NeuronKind) -> NeuronModel:
    """The :class:`NeuronModel` of ``kind``."""
    return MODELS[NeuronKind(kind)]


def state_words(kind: int | NeuronKind) -> int:
    """int32 words per neuron that the C arena holds for this model (SPEC.md 4)."""
    return len(model(kind).states)


def c_defines() -> list[str]:
    """Lines of ``firmware/runtime/esnn_layout.h`` derived from :data:`MODELS`: the int32 state
    words per neuron of each model and the arena's extra states (SPEC.md 4)."""
    lines = ["/* neuron models (edgesnn/graph/neurons.py): int32 state words per neuron */"]
    lines += [f"#define ESNN_NEURON_{m.kind.name}_STATES {len(m.states)}u" for m in MODELS.values()]
    extra = [m for m in MODELS.values() if len(m.states) > 1]
    expr = " : ".join(f"(k) == ESNN_NEURON_{m.kind.name} ? {len(m.states) - 1}u"
                      for m in extra) + " : 0u"
    lines.append(f"#define ESNN_NEURON_EXTRA_STATES(k) ({expr})")
    ext = " || ".join(f"(k) == ESNN_NEURON_{m.kind.name}" for m in MODELS.values()
                      if ext_params(m.kind)) or "0"
    lines.append(f"#define ESNN_NEURON_HAS_EXT(k) ({ext}) /* a LAYER_EXT record follows */")
    return lines


# -------------------------------------------------------------------------------- the step

X = TypeVar("X")


class Arith(Protocol[X]):
    """The arithmetic :func:`step` is written in; one implementation per array library."""

    def leak(self, x: X, q: X | None) -> X:
        """``(x * q + 32768) >> 16`` (float: ``q * x``); ``q`` None: no leak (identity)."""
        ...

    def sat32(self, x: X) -> X:
        """Clamp to [INT32_MIN, INT32_MAX] (float: identity)."""
        ...

    def fire(self, v: X, theta: X, ge: bool) -> X:
        """The spikes: ``v > theta`` (``v >= theta`` with ``ge``)."""
        ...

    def gate(self, s: X) -> X:
        """What the reset sees of the spikes (float training may detach them)."""
        ...

    def zero_where(self, v: X, r: X) -> X:
        """``v`` with the neurons where ``r`` is set made 0."""
        ...

    def times(self, r: X, theta: X) -> X:
        """``r * theta`` (the threshold where ``r`` is set, else 0)."""
        ...


@dataclass
class LayerRule(Generic[X]):
    """One layer's neuron parameters in a backend's array type."""

    kind: NeuronKind
    reset: ResetMode
    ge: bool
    theta: X
    leak: X | None  # None: no leak
    syn_leak: X | None = None  # CUBA_LIF: the synaptic current's leak (None: no leak)


@dataclass
class State(Generic[X]):
    """One layer's per-neuron states (``[B, n]`` each): the membrane ``v``, ``pending`` (the
    thresholds of the neurons that fired, for SUBTRACT_DELAYED; else None) and ``syn`` (the
    synaptic current of a CUBA_LIF layer; else None)."""

    v: X
    pending: X | None = None
    syn: X | None = None


def new_state(rule: LayerRule[Any], zeros: Any) -> State[Any]:
    """Fresh states for ``rule`` from a ``zeros()`` factory (SPEC.md 3: all start at 0)."""
    return State(v=zeros(),
                 pending=zeros() if rule.reset == ResetMode.SUBTRACT_DELAYED else None,
                 syn=zeros() if "syn" in MODELS[rule.kind].states else None)


def step(a: Arith[X], rule: LayerRule[X], st: State[X], current: X) -> X:
    """SPEC.md 3.2 steps 2.2-2.4 for one layer and one step, updating ``st``; returns the
    spikes. A CUBA_LIF layer first leaks its synaptic current and adds the input current to it
    (saturated), and that is the current its membrane integrates. Then: leak, integrate the
    current, subtract the delayed reset (order: snnTorch's ``beta * v + I - theta * s_prev``;
    exact and order-free in the integer backends), saturate, fire, reset (the membrane only)."""
    if rule.kind == NeuronKind.CUBA_LIF:
        if st.syn is None:
            raise ValueError("a CUBA_LIF layer needs its syn state")
        st.syn = a.sat32(a.leak(st.syn, rule.syn_leak) + current)
        current = st.syn
    v = a.leak(st.v, rule.leak) + current
    if rule.reset == ResetMode.SUBTRACT_DELAYED:
        if st.pending is None:
            raise ValueError("a SUBTRACT_DELAYED layer needs its pending state")
        v = v - st.pending  # exact: the leaked v that fired is >= theta >= 0
    v = a.sat32(v)
    s = a.fire(v, rule.theta, rule.ge)
    if rule.reset == ResetMode.ZERO:
        v = a.zero_where(v, a.gate(s))
    elif rule.reset == ResetMode.SUBTRACT:
        v = v - a.times(a.gate(s), rule.theta)
    elif rule.reset == ResetMode.SUBTRACT_DELAYED:
        st.pending = a.times(a.gate(s), rule.theta)
    st.v = v
    return s


class NumpyInt:
    """:class:`Arith` on int64 numpy arrays (spikes are bool arrays)."""

    def leak(self, x: np.ndarray, q: np.ndarray | None) -> np.ndarray:
        if q is None:
            return x
        y = x * q
        y += 32768
        y >>= 16  # arithmetic shift: rounds to nearest, ties toward +inf
        return y

    def sat32(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, INT32_MIN, INT32_MAX, out=x)

    def fire(self, v: np.ndarray, theta: np.ndarray, ge: bool) -> np.ndarray:
        return v >= theta if ge else v > theta

    def gate(self, s: np.ndarray) -> np.ndarray:
        return s

    def zero_where(self, v: np.ndarray, r: np.ndarray) -> np.ndarray:
        v[r] = 0
        return v

    def times(self, r: np.ndarray, theta: np.ndarray) -> np.ndarray:
        return np.multiply(r, theta, dtype=np.int64)


NUMPY_INT = NumpyInt()


def _q16_or_none(leak: np.ndarray | None) -> np.ndarray | None:
    if leak is None:
        return None
    q = np.asarray(leak, dtype=np.int64)
    return None if bool(np.all(q == Q16_ONE)) else q


def numpy_rule(kind: int | NeuronKind, reset: int | ResetMode, fire: int | FireRule,
               theta: np.ndarray, leak: np.ndarray,
               syn_leak: np.ndarray | None = None) -> LayerRule[np.ndarray]:
    """A layer's :class:`LayerRule` for :class:`NumpyInt` (int64 arrays; a leak of all
    ``Q16_ONE`` becomes None, the identity)."""
    return LayerRule(kind=NeuronKind(kind), reset=ResetMode(reset),
                     ge=FireRule(fire) == FireRule.GE,
                     theta=np.asarray(theta, dtype=np.int64), leak=_q16_or_none(leak),
                     syn_leak=_q16_or_none(syn_leak))
