"""The int8 ANN baseline over the serial link (``firmware/PROTOCOL.md``, "ANN baseline"): an
INFER flagged ``FLAG_ANN`` runs the ``.esg``'s ANN section on the device, which answers
``ANN_RESULT`` (prediction, cycles, int32 logits, MACs and visited inputs per layer).

One request in flight at a time (the baseline is a comparison run, not the throughput path):
a lost or corrupted answer is asked for again with a POLL flagged ANN, a device reset (an
unsolicited HELLO) gets the request again, and a device ERROR ends the sample as failed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from edgesnn.host.link import DeviceLink, LinkError
from edgesnn.host.protocol import (
    FLAG_ANN,
    DeviceError,
    Frame,
    FrameError,
    MsgType,
    ProtocolError,
    is_transient,
    status_name,
    unpack_result,
)

_FIXED = struct.Struct("<BBHI")  # prediction, n_layers, n_classes, cycles


@dataclass(frozen=True)
class AnnInferResult:
    """The ANN_RESULT payload."""

    prediction: int
    cycles: int
    logits: tuple[int, ...]
    macs: tuple[int, ...]
    active: tuple[int, ...]

    def encode(self) -> bytes:
        n_layers = len(self.macs)
        if len(self.active) != n_layers:
            raise ProtocolError("macs and active need one entry per layer")
        return (_FIXED.pack(self.prediction, n_layers, len(self.logits), self.cycles & 0xFFFFFFFF)
                + struct.pack(f"<{len(self.logits)}i", *self.logits)
                + struct.pack(f"<{n_layers}I", *self.macs)
                + struct.pack(f"<{n_layers}I", *self.active))

    @classmethod
    def decode(cls, payload: bytes) -> AnnInferResult:
        head, logits, macs, active = unpack_result(payload, _FIXED, "ANN_RESULT", "i")
        pred, _, _, cycles = head
        return cls(pred, cycles, logits, macs, active)


@dataclass
class AnnOutcome:
    """What the device said about one sample's ANN inference (or why it said nothing)."""

    index: int
    status: str  # "ok" | "failed"
    reason: str = ""
    prediction: int | None = None
    logits: list[int] | None = None
    macs: list[int] | None = None
    active: list[int] | None = None
    cycles: int | None = None
    attempts: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _ask(link: DeviceLink, index: int, pixels: bytes, timeout_s: float,
         attempts: int) -> AnnOutcome:
    seq = link.next_seq()
    request = Frame(MsgType.INFER, seq, bytes(pixels), FLAG_ANN)
    link.send(request)
    sent, tries = 1, 0
    deadline = link.clock() + timeout_s
    while True:
        for item in link.poll():
            if isinstance(item, FrameError) or not item.from_device:
                continue
            if item.type == MsgType.HELLO and item.seq == 0:  # the device reset: ask again
                link.send(request)
                sent += 1
                deadline = link.clock() + timeout_s
            elif item.seq != seq:
                continue
            elif item.type == MsgType.ANN_RESULT:
                try:
                    r = AnnInferResult.decode(item.payload)
                except ProtocolError as exc:
                    return AnnOutcome(index, "failed", f"bad ANN_RESULT: {exc}", attempts=sent)
                return AnnOutcome(index, "ok", prediction=r.prediction, logits=list(r.logits),
                                  macs=list(r.macs), active=list(r.active), cycles=r.cycles,
                                  attempts=sent)
            elif item.type == MsgType.ERROR:
                err = DeviceError.decode(item.payload)
                if not is_transient(err.status):
                    return AnnOutcome(index, "failed", f"device error {status_name(err.status)}",
                                      attempts=sent)
                link.send(request)  # a link fault: the whole frame again
                sent += 1
                deadline = link.clock() + timeout_s
        if link.clock() >= deadline:
            tries += 1
            if tries >= attempts:
                return AnnOutcome(index, "failed", f"no answer after {tries} waits of "
                                  f"{timeout_s:g} s", attempts=sent)
            link.send(request)  # the request or its answer was lost: send it again
            sent += 1
            deadline = link.clock() + timeout_s


def stream_ann(link: DeviceLink, samples: Iterable[tuple[int, bytes]],
               on_result: Callable[[AnnOutcome], None], *, timeout_s: float = 5.0,
               attempts: int = 8) -> None:
    """Run the device's ANN on every ``(index, pixels)``, one request at a time; each outcome
    goes to ``on_result``. Needs a device whose HELLO offers the ANN."""
    if link.hello is None or not link.hello.ann:
        raise LinkError(f"{link.name}: the device offers no ANN baseline (its HELLO lacks the "
                        "ANN bit: a firmware built from an .esg without an ANN section)")
    for index, pixels in samples:
        on_result(_ask(link, index, pixels, timeout_s, attempts))
