"""One progress line on a terminal while an evaluation runs: rows done, tokens, rate.

Written to stderr, redrawn in place about once a second, and only when stderr
is a terminal: a job's log or a pipe gets nothing (stdout is the result's).
Likewise a library's colours (MLflow's evaluation summary) reach a terminal only:
:func:`plain_stderr`.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Final, TextIO

if TYPE_CHECKING:
    from workload.model.pacing import Pacer

__all__ = ["Progress", "plain_stderr"]

#: A terminal's control sequences (colours, bold): ESC [ parameters letter.
_ANSI: Final = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class _Plain(io.TextIOBase):
    """Writes to ``inner`` without terminal control sequences."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        self._inner.write(_ANSI.sub("", text))
        return len(text)

    def flush(self) -> None:
        self._inner.flush()


@contextlib.contextmanager
def plain_stderr() -> Iterator[None]:
    """Within the block, what is written to stderr loses its colour codes unless stderr is
    a terminal: a log file or a pipe gets ``Run ID: 1234``, not ``Run ID: \\x1b[94m1234``."""
    stream = sys.stderr
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty():
        yield
        return
    with contextlib.redirect_stderr(_Plain(stream)):
        yield


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
