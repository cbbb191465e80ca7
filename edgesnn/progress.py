"""One progress display for every long loop (training, QAT, conversion, evaluation).

On a terminal it is a full tqdm bar, redrawn in place. Anywhere else (a CI log, a pipe, a
file) redraws would pile up as thousands of carriage-return fragments, so it writes one
plain line every ``interval`` seconds instead (``EDGESNN_PROGRESS_INTERVAL``, default 5)::

    eval: 4,096/10,000 sample (41 %), 7,210 sample/s, 0.6 s elapsed, ~0.8 s left

and a last line when it closes, if it wrote any (so a short loop stays silent in a log).

Use it like tqdm: iterate over it, or call :meth:`update`; ``set_postfix`` adds fields; as a
context manager it closes itself. A leaf module: standard library only (tqdm on demand).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

__all__ = ["Progress", "progress"]

DEFAULT_INTERVAL_S = 5.0


def _interval() -> float:
    text = os.environ.get("EDGESNN_PROGRESS_INTERVAL", "")
    try:
        value = float(text)
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if value >= 0 else DEFAULT_INTERVAL_S


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:.3g}"


class Progress:
    """A progress display: a tqdm bar on a terminal, periodic log lines elsewhere, or nothing
    (``enabled=False``). Thread-safe :meth:`update`."""

    def __init__(self, iterable: Iterable[Any] | None = None, *, total: int | None = None,
                 desc: str = "", unit: str = "it", initial: int = 0, enabled: bool = True,
                 stream: TextIO | None = None, interval: float | None = None) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.desc, self.unit = total, desc, unit
        self.n = self.start_n = initial
        self.stream = stream if stream is not None else sys.stderr
        self.interval = _interval() if interval is None else interval
        self.postfix: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._t0 = self._last = time.monotonic()
        self._lines = 0
        self._closed = False
        self._bar: Any = None
        self.enabled = enabled
        if enabled and _isatty(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=False,
                             file=self.stream)

    # --- tqdm-like interface -------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("this Progress has no iterable; call update() instead")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        with self._lock:
            self.n += n
            if self._bar is not None:
                self._bar.update(n)
                return
            now = time.monotonic()
            if self.enabled and now - self._last >= self.interval:
                self._last = now
                self._write(now)

    def set_postfix(self, **fields: Any) -> None:
        self.postfix = fields
        if self._bar is not None:
            self._bar.set_postfix(**fields)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._bar is not None:
                self._bar.close()
            elif self.enabled and self._lines:
                self._write(time.monotonic(), final=True)

    # --- log lines -----------------------------------------------------------------------
    def line(self, now: float | None = None, final: bool = False) -> str:
        """The log line for the current state."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self._t0, 1e-9)
        rate = (self.n - self.start_n) / elapsed
        done = f"{_num(self.n)}"
        if self.total:
            done += f"/{_num(self.total)} {self.unit} ({100 * self.n / self.total:.0f} %)"
        else:
            done += f" {self.unit}"
        parts = [f"{self.desc}: {done}" if self.desc else done,
                 f"{_num(rate)} {self.unit}/s", f"{elapsed:.1f} s elapsed"]
        if self.total and not final and rate > 0 and self.n < self.total:
            parts.append(f"~{(self.total - self.n) / rate:.1f} s left")
        parts += [f"{k}={v}" for k, v in self.postfix.items()]
        return ", ".join(parts) + (" (done)" if final else "")

    def _write(self, now: float, final: bool = False) -> None:
        try:
            self.stream.write(self.line(now, final) + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream costs only the display
            self.enabled = False
        self._lines += 1


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress(iterable: Iterable[Any] | None = None, **kwargs: Any) -> Progress:
    """:class:`Progress` over ``iterable`` (or for :meth:`Progress.update` calls)."""
    return Progress(iterable, **kwargs)
