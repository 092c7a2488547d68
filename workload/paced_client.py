"""The OpenAI client of an evaluation: every HTTP attempt paced, counted and stoppable.

The pacing sits in the client's HTTP transport, below the OpenAI SDK's own
retry loop, so a retry is paced like a first attempt (Azure counts it like
one), and the SDK keeps doing what it does well: backing off and honouring
``Retry-After`` on 429 and 5xx. The transport adds three things:

* before a request leaves: a place among ``--concurrency`` in flight, then the
  deployment's next slot (:class:`workload.pacing.Pacer`);
* on a 429: every later slot of that deployment waits out ``Retry-After``;
* on a 401, 403 or 404: the run stops. Those answers do not get better with
  retries or with other rows, so nothing more is sent, by any thread
  (:class:`Stopped`).

The client itself comes from ``workload.chat.make_client`` (the same
authentication as the chat command), with only its HTTP client swapped.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import httpx2

from workload.pacing import Pacer, admission_tokens

if TYPE_CHECKING:
    import openai

__all__ = ["FATAL_STATUSES", "PacedTransport", "RunControl", "Stopped", "paced_client"]

#: Answers that stop the whole run at once: the key, the network rules or the deployment.
FATAL_STATUSES: Final = frozenset({401, 403, 404})


class Stopped(BaseException):
    """The run was stopped (a 401/403/404 answer); nothing more may be sent.

    A BaseException on purpose: ``mlflow.genai.evaluate`` records any Exception
    of a row or a scorer and goes on with the next one, which would send the
    next request; this one ends the evaluation where it is raised.
    """


@dataclass
class RunControl:
    """What every paced request of one run shares: the in-flight cap and the stop flag."""

    concurrency: int
    stopped: str | None = None
    """Why the run stopped (one line), or None while it runs."""
    _gate: threading.Semaphore = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _event: threading.Event = field(default_factory=threading.Event, repr=False)

    def __post_init__(self) -> None:
        self._gate = threading.Semaphore(self.concurrency)

    def stop(self, reason: str) -> None:
        """Stop the run; the first reason given is kept, and every waiting request wakes."""
        with self._lock:
            if self.stopped is None:
                self.stopped = reason
        self._event.set()

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` (a request waiting for its slot), or raise Stopped sooner."""
        if seconds > 0:
            self._event.wait(seconds)
        self.check()

    def check(self) -> None:
        """Raise :class:`Stopped` when the run was stopped."""
        if self.stopped is not None:
            raise Stopped(self.stopped)


def _retry_after(response: httpx2.Response) -> float:
    """Seconds the service asked to wait (``retry-after-ms`` first, as the SDK reads it)."""
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = response.headers.get(header)
        if value is None:
            continue
        try:
            return max(float(value) / divisor, 0.0)
        except ValueError:
            continue
    return 1.0


class PacedTransport(httpx2.BaseTransport):
    """An HTTP transport that paces, caps and watches every request of one deployment."""

    def __init__(
        self,
        pacer: Pacer,
        control: RunControl,
        inner: httpx2.BaseTransport | None = None,
    ) -> None:
        self.pacer = pacer
        self.control = control
        self._inner = inner or httpx2.HTTPTransport()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Wait for a place and a slot, send, and react to what came back."""
        self.control.check()
        try:
            body = json.loads(request.read() or b"{}")
        except ValueError:
            body = {}
        tokens = admission_tokens(body if isinstance(body, dict) else {})
        with self.control._gate:
            self.control.check()
            slot = self.pacer.reserve(tokens)
            self.control.wait(self.pacer.until(slot))
            response = self._inner.handle_request(request)
            try:
                response.read()  # the place is held until the answer is in, not just its head
            except BaseException:
                response.close()
                raise
        if response.status_code == 429:
            self.pacer.hold_off(_retry_after(response))
        elif response.status_code in FATAL_STATUSES:
            self.control.stop(
                f"HTTP {response.status_code} from deployment {self.pacer.budget.deployment!r}"
            )
        return response

    def close(self) -> None:
        """Close the connections."""
        self._inner.close()


def paced_client(
    client: openai.OpenAI, pacer: Pacer, control: RunControl, *, timeout: float
) -> openai.OpenAI:
    """``client`` (same endpoint, authentication and retries) sending through a paced transport."""
    import openai

    http_client = openai.DefaultHttpxClient(
        transport=PacedTransport(pacer, control), timeout=timeout
    )
    return client.with_options(http_client=http_client)
