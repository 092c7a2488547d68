"""The OpenAI client of an evaluation: every HTTP attempt paced, counted and stoppable.

The pacing sits in the client's HTTP transport, below the OpenAI SDK's own
retry loop, so a retry is paced like a first attempt (Azure counts it like
one), and the SDK keeps doing what it does well: backing off and honouring
``Retry-After`` on 429 and 5xx. The transport adds three things:

* before a request leaves: the deployment's next slot
  (:class:`workload.model.pacing.Pacer`), then, once the slot has come, a place
  among that deployment's ``--concurrency`` in flight (each deployment has its
  own places, so rows waiting for the chat deployment never hold back the
  judge deployment's requests, and a request waiting for its slot holds no
  place); a request that found no place at its slot gives the slot back and
  takes a new one once it has a place; the time spent waiting
  for them is added to the request's model span as ``llmops.pacing_wait_ms``
  (:data:`workload.monitoring.traces.PACING_WAIT_MS`), since that span (autolog's, around
  ``chat.completions.create``) is open while the transport waits: the monitor
  takes the wait off the trace's latency, so a row's latency is the service's
  time, as a chat call's is, and not its queueing behind our own rate limit;
* on a 429: every later slot of that deployment waits out ``Retry-After``;
* on a 401, 403 or 404: the run stops. Those answers do not get better with
  retries or with other rows, so nothing more is sent, by any thread
  (:class:`Stopped`).

The client itself comes from ``workload.model.chat.make_client`` (the same
authentication as the chat command), with only its HTTP client swapped.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import httpx2

from workload.model.network_refusal import network_hint
from workload.model.pacing import Pacer, admission_tokens
from workload.monitoring.traces import PACING_WAIT_MS

if TYPE_CHECKING:
    import openai
    from mlflow.entities import LiveSpan

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
    """What every paced request of one run shares: the in-flight caps and the stop flag."""

    concurrency: int
    """Requests in flight per deployment."""
    stopped: str | None = None
    """Why the run stopped (one line), or None while it runs."""
    sleep: Callable[[float], None] | None = None
    """How a request waiting for its slot sleeps: None waits on the stop flag, so that a stop
    wakes it; a test gives its fake clock's sleep (the one its pacers have)."""
    _gates: dict[str, threading.Semaphore] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _event: threading.Event = field(default_factory=threading.Event, repr=False)

    def gate(self, deployment: str) -> threading.Semaphore:
        """The places in flight of ``deployment`` (made on first use)."""
        with self._lock:
            return self._gates.setdefault(deployment, threading.Semaphore(self.concurrency))

    def stop(self, reason: str) -> None:
        """Stop the run; the first reason given is kept, and every waiting request wakes."""
        with self._lock:
            if self.stopped is None:
                self.stopped = reason
        self._event.set()

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` (a request waiting for its slot), or raise Stopped sooner."""
        if seconds > 0:
            if self.sleep is None:
                self._event.wait(seconds)
            else:
                self.sleep(seconds)
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


def _request_span(request: httpx2.Request) -> LiveSpan | None:
    """The open MLflow span this request is sent for, if any.

    ``mlflow.openai.autolog()`` opens its span without making it the active one
    (``start_span_no_context``: ``mlflow.get_current_active_span()`` does not see
    it), but names it in the request's W3C ``traceparent`` header; MLflow keeps
    its open spans in its in-memory trace manager by trace and span id, which is
    where ``get_current_active_span`` looks them up too. A request without that
    header (a judge's, which autolog does not patch) belongs to the active span,
    if there is one.
    """
    import mlflow
    from mlflow.tracing.trace_manager import InMemoryTraceManager

    parts = request.headers.get("traceparent", "").split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return mlflow.get_current_active_span()
    try:
        otel_trace_id = int(parts[1], 16)
    except ValueError:
        return None
    manager = InMemoryTraceManager.get_instance()  # type: ignore[no-untyped-call]
    trace_id = manager.get_mlflow_trace_id_from_otel_id(otel_trace_id)
    return manager.get_span_from_id(trace_id, parts[2]) if trace_id is not None else None


def _record_wait(request: httpx2.Request, seconds: float) -> None:
    """Add ``seconds`` of pacing wait to the request's span (retries add up)."""
    span = _request_span(request)
    if span is None:
        return
    before = span.get_attribute(PACING_WAIT_MS)
    total = before if isinstance(before, int | float) and not isinstance(before, bool) else 0.0
    span.set_attribute(PACING_WAIT_MS, float(total) + seconds * 1000.0)


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
        queued = self.pacer.now()  # the waits are measured on the pacer's clock, as its slots
        gate = self.control.gate(self.pacer.budget.deployment)
        slot = self.pacer.reserve(tokens)
        self.control.wait(self.pacer.until(slot))
        if not gate.acquire(blocking=False):
            # No place when the slot came: the request keeps its turn and waits for one.
            while not gate.acquire(timeout=0.05):
                self.control.check()
        try:
            # Leaving later than its slot (no place, a thread woken late), the request is
            # counted where it really goes, if the windows there have room; else it takes a
            # new slot (sending late on the old one could overfill a window).
            while not self.pacer.postpone(slot, tokens):
                self.pacer.cancel(slot, tokens)
                slot = self.pacer.reserve(tokens)
                self.control.wait(self.pacer.until(slot))
        except BaseException:
            gate.release()
            raise
        try:
            # Recorded before sending: the span ends when the answer is in.
            _record_wait(request, self.pacer.now() - queued)
            response = self._inner.handle_request(request)
            try:
                response.read()  # the place is held until the answer is in, not just its head
            except BaseException:
                response.close()
                raise
        finally:
            gate.release()
        if response.status_code == 429:
            self.pacer.hold_off(_retry_after(response))
        elif response.status_code in FATAL_STATUSES:
            reason = f"HTTP {response.status_code} from deployment {self.pacer.budget.deployment!r}"
            refusal = _network_refusal(response)
            self.control.stop(f"{reason}: {refusal}" if refusal else reason)
        return response

    def close(self) -> None:
        """Close the connections."""
        self._inner.close()


def _network_refusal(response: httpx2.Response) -> str:
    """Azure's own words when it refused a private account's caller for its network (the
    stop's reason then says why, and the run's hint what to do), else ""."""
    try:
        error = json.loads(response.content).get("error") or {}
        message = str(error.get("message") or "")
    except (ValueError, AttributeError):
        return ""
    return message if network_hint(response.status_code, message) else ""


def paced_client(
    client: openai.OpenAI, pacer: Pacer, control: RunControl, *, timeout: float
) -> openai.OpenAI:
    """``client`` (same endpoint, authentication and retries) sending through a paced transport."""
    import openai

    from workload.model.masking import MaskingTransport

    http_client = openai.DefaultHttpxClient(
        transport=PacedTransport(pacer, control, inner=MaskingTransport()), timeout=timeout
    )
    return client.with_options(http_client=http_client)
