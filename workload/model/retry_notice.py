"""A retried call says so on stderr, as it waits: ``429, retrying in 15 s (2/5)``.

The OpenAI SDK retries 429, 5xx, timeouts and failed connections itself, honouring
``Retry-After``, and may sleep for minutes in all: silence then looks like a hang. Its
retry loop is not ours to copy, so it is observed instead, from its two ends:

* the HTTP transport (:class:`AttemptTransport`, under the SDK) notes what each attempt
  met: the status of the answer, or that it timed out or could not connect;
* the SDK announces each retry, with the wait it chose and the retry's number, as the
  INFO record ``Retrying request in %f seconds (retry %i of %s)`` of its logger
  ``openai._base_client``; :func:`retry_notices` listens to that record and prints one
  line, naming what the attempt before it met (same thread: the SDK retries in the
  thread that called it).

The eval does not need this: its pacer shows its own progress and 429 count.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, TextIO

import httpx2

__all__ = ["AttemptTransport", "retry_notices"]

#: The SDK's logger, and the message of its retry announcement (``openai/_base_client.py``).
_SDK_LOGGER: Final = "openai._base_client"
_RETRYING: Final = "Retrying request in"

_last = threading.local()


class AttemptTransport(httpx2.BaseTransport):
    """Sends through ``inner``, noting (per thread) what the attempt met."""

    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send; remember the status, or the kind of failure."""
        try:
            response = self._inner.handle_request(request)
        except httpx2.TimeoutException:
            _last.outcome = "timed out"
            raise
        except httpx2.TransportError:
            _last.outcome = "could not connect"
            raise
        _last.outcome = str(response.status_code)
        return response

    def close(self) -> None:
        """Close the connections."""
        self._inner.close()


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.2g} s"


class _Notices(logging.Handler):
    def __init__(self, stream: TextIO) -> None:
        super().__init__(logging.INFO)
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        if not str(record.msg).startswith(_RETRYING) or not isinstance(record.args, tuple):
            return
        wait, number, of = (*record.args, None, None, None)[:3]
        if not isinstance(wait, int | float) or not isinstance(number, int):
            return  # another shape of the SDK's message: say nothing rather than fail the call
        line = f"{getattr(_last, 'outcome', 'failed')}, retrying in {_seconds(float(wait))}"
        print(f"{line} ({number}/{of})", file=self.stream, flush=True)


@contextmanager
def retry_notices(stream: TextIO | None = None) -> Iterator[None]:
    """Within the block, each retry of the OpenAI SDK prints one line on ``stream`` (stderr).

    The SDK's logger is let through INFO meanwhile (only its retry announcement is logged
    at that level), and left as it was afterwards.
    """
    logger = logging.getLogger(_SDK_LOGGER)
    handler = _Notices(stream or sys.stderr)
    level = logger.level
    if not logger.isEnabledFor(logging.INFO):
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
