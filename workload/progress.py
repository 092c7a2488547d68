"""One progress line on a terminal while an evaluation runs: rows done, tokens, rate.

Written to stderr, redrawn in place about once a second, and only when stderr
is a terminal: a job's log or a pipe gets nothing (stdout is the result's).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from workload.model.pacing import Pacer

__all__ = ["Progress"]


class Progress:
    """Counts rows as they finish and shows them with the pacers' tokens and rate."""

    def __init__(self, total: int, pacers: Sequence[Pacer], stream: TextIO | None = None) -> None:
        self.total = total
        self._pacers = list({id(p): p for p in pacers}.values())
        self._stream = stream if stream is not None else sys.stderr
        self._lock = threading.Lock()
        self._done = 0
        self._errors = 0
        self._start = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_terminal(cls, total: int, pacers: Sequence[Pacer]) -> Progress | None:
        """A progress line when stderr is a terminal, else None."""
        isatty = getattr(sys.stderr, "isatty", None)
        return cls(total, pacers) if callable(isatty) and isatty() else None

    def row_done(self, *, error: bool) -> None:
        """One more row answered (or failed)."""
        with self._lock:
            self._done += 1
            self._errors += int(error)

    def line(self) -> str:
        """The current line."""
        elapsed = max(time.monotonic() - self._start, 1e-9)
        tokens = sum(p.tokens for p in self._pacers)
        requests = sum(p.requests for p in self._pacers)
        throttled = sum(p.throttled for p in self._pacers)
        with self._lock:
            done, errors = self._done, self._errors
        text = (
            f"rows {done}/{self.total}"
            + (f" ({errors} failed)" if errors else "")
            + f", {requests} requests, {tokens:,} tokens admitted, "
            f"{tokens * 60 / elapsed:,.0f} tokens/min, {elapsed:.0f} s"
        )
        return text + (f", {throttled} x 429" if throttled else "")

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self._stream.write("\r" + self.line() + "\033[K")
            self._stream.flush()

    def __enter__(self) -> Progress:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="eval-progress")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._stream.write("\r" + self.line() + "\033[K\n")
        self._stream.flush()
