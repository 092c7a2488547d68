"""A local fake of the Azure OpenAI REST API (and the plain OpenAI one), over a real socket.

``POST /openai/deployments/<name>/chat/completions?api-version=...`` with an
``api-key`` header answers with the JSON Azure returns (``choices``,
``usage`` ...); ``POST /v1/chat/completions`` with ``Authorization: Bearer``
stands in for an OpenAI-compatible server. Replies can be scripted (429 with
Retry-After, 500, 401, a slow answer, a body that is not JSON) and every request is recorded.

    with FakeAzureOpenAI(api_key="k") as fake:
        fake.script(Reply.rate_limited(), Reply.slow(2.0))  # then the normal completion
        ... AZURE_OPENAI_ENDPOINT=fake.endpoint, AZURE_OPENAI_API_KEY=fake.api_key ...
        assert len(fake.requests) == 3

A wrong key gets 401, an unknown deployment 404, as Azure answers. With
``ad_token`` the fake is a keyless account (local authentication disabled): it
wants ``Authorization: Bearer <ad_token>``, refuses any ``api-key`` header with
403 and any other token with 401, as Azure does. Pytest
tests can take the ``fake_azure_openai`` fixture (``tests/conftest.py``): a
started server with the default key and deployment.

Rate limits, as Azure enforces them on a Standard deployment, when ``tpm`` is
given (``rpm`` defaults to Azure's 6 per 1,000 TPM): each deployment has a
token bucket for tokens and one for requests, each holding ``window`` seconds'
worth of its per-minute limit (a sixth of it for Azure's 10 s) and refilling
continuously at the limit's rate. A request costs what Azure counts at
admission, the prompt's estimated tokens (characters / 4, plus 4 a message)
plus ``max_tokens``; when either bucket lacks it, the answer is 429 with
``Retry-After`` (and ``retry-after-ms``) saying when it would fit. A minute's
allowance sent at once is refused; the same requests sent evenly are not.
``judge_deployment`` adds a second deployment with its own limits.

A request larger than a window's share (a long ``max_tokens``, or none at all)
is admitted alone: when the bucket is full it empties it, as Azure admits "an
unconstrained request" that its reservation alone would exceed (Microsoft Q&A
1381398, read 2026-12-05). A request without ``max_tokens`` reserves
``unbounded_tokens`` (the model's context, 128,000 for gpt-4o) until it is
answered, and then only what it used, as that answer says.

Stricter, as a real service is (options; the defaults keep tests fast):
``limiter="sliding"`` enforces the limits over sliding windows of ``window``
seconds (at most ``rpm * window / 60`` requests and ``tpm * window / 60``
tokens in any window, as the quota page describes Azure's evaluation over
"1 or 10 seconds"); ``estimate="strict"`` counts the prompt with a formula of
its own, not the pacer's (an ASCII word one token per 4 characters, each
punctuation mark and each CJK character one token, 3 a message):
more than characters / 4 for English, several times more for Japanese;
``latency=(low, high)`` answers after a random (seeded) delay in that range;
``judge_rationale_words=N`` makes the judge's rationale N words longer, so that a
low ``max_tokens`` cuts the answer off (``finish_reason`` ``length``);
``judge_status=503`` answers every judge prompt with that error (an outage).

A request carrying MLflow's Guidelines judge prompt gets MLflow's judge answer,
``{"rationale": ..., "result": "yes"|"no"}``, the verdict from ``judge_verdict``
(the prompt's text -> pass?). A completion longer than ``max_tokens`` words is
cut there, with ``finish_reason`` ``length``.
"""

from __future__ import annotations

import json
import math
import random
import sys
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlparse

__all__ = [
    "JOKE",
    "Admission",
    "FakeAzureOpenAI",
    "RecordedRequest",
    "Reply",
    "admission_tokens",
    "default_reply_text",
    "is_judge_prompt",
    "strict_prompt_tokens",
]

#: What every completion says, unless ``reply_text`` is given.
JOKE = "Why don't elephants use computers? They're afraid of the mouse!"


def default_reply_text(messages: list[dict[str, Any]]) -> str:
    """The assistant's answer: the same joke for every prompt."""
    return JOKE


@dataclass(frozen=True)
class Reply:
    """One scripted answer; ``body`` None with status 200 means the normal completion.

    A ``str`` body is sent as is (with a JSON content type), so it can be malformed.
    """

    status: int = 200
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def rate_limited(cls, retry_after: str = "0.01") -> Reply:
        """Azure's 429 when the deployment's tokens per minute are used up."""
        message = (
            "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
            "2024-05-01-preview have exceeded token rate limit of your current OpenAI S0 "
            f"pricing tier. Please retry after {retry_after} seconds."
        )
        body = {"error": {"code": "429", "message": message}}
        return cls(429, body, {"Retry-After": retry_after})

    @classmethod
    def network_refused(cls, public_access_disabled: bool) -> Reply:
        """Azure's 403 to a caller outside a private account's network: public network
        access Disabled, or the caller's address not among the account's IP rules."""
        message = (
            "Public access is disabled. Please configure private endpoint."
            if public_access_disabled
            else "Access denied due to Virtual Network/Firewall rules."
        )
        return cls(403, {"error": {"code": "403", "message": message}})

    @classmethod
    def server_error(cls, status: int = 500) -> Reply:
        """A 5xx from the service."""
        return cls(status, {"error": {"code": "InternalServerError", "message": "boom"}})

    @classmethod
    def slow(cls, delay: float) -> Reply:
        """The normal completion, after ``delay`` seconds (longer than a client timeout, say)."""
        return cls(delay=delay)

    @classmethod
    def garbled(cls) -> Reply:
        """HTTP 200 with a body that is not JSON."""
        return cls(200, '{"choices": [')


@dataclass(frozen=True)
class RecordedRequest:
    """What the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


#: What a request without max_tokens reserves by default: gpt-4o's context.
UNBOUNDED_TOKENS = 128_000


def admission_tokens(body: dict[str, Any], unbounded: int = UNBOUNDED_TOKENS) -> int:
    """What the fake, as Azure, counts against TPM when a request arrives (the simple estimate)."""
    prompt = sum(
        math.ceil(len(str(m.get("content") or "")) / 4) + 4
        for m in body.get("messages") or []
        if isinstance(m, dict)
    )
    completion = body.get("max_tokens") or body.get("max_completion_tokens") or unbounded
    return prompt + int(completion)


def strict_prompt_tokens(text: str) -> int:
    """The strict fake's own count of a text: ASCII words by 4 characters, the rest one each."""
    tokens, run = 0, 0
    for char in text + " ":
        if char.isascii() and (char.isalnum() or char == "_"):
            run += 1
            continue
        tokens += math.ceil(run / 4)
        run = 0
        if not char.isspace() and unicodedata.category(char)[0] != "M":
            tokens += 1
    return tokens


def is_judge_prompt(messages: list[dict[str, Any]]) -> bool:
    """MLflow's Guidelines judge prompt (``mlflow.genai.judges.prompts.guidelines``)."""
    last = str(messages[-1].get("content") or "") if messages else ""
    return "<guidelines>" in last and '"result": "yes|no"' in last


@dataclass(frozen=True)
class Admission:
    """A request the fake's rate limiter let through."""

    deployment: str
    at: float
    """The fake's clock (``time.monotonic()`` unless given one) when it was admitted."""
    tokens: int
    """Its admission tokens (prompt estimate plus max_tokens)."""
    judge: bool


class _Window:
    """A sliding window's log: what was admitted in the last ``window`` seconds."""

    def __init__(self, per_minute: int, window: float) -> None:
        self.capacity = per_minute * window / 60.0
        self.window = window
        self.log: deque[list[float]] = deque()  # [time, amount], amount refundable

    def _trim(self, now: float) -> None:
        while self.log and self.log[0][0] <= now - self.window:
            self.log.popleft()

    def wait(self, cost: float, now: float) -> float:
        """Seconds until ``cost`` fits (0 when it fits now; alone, any cost fits)."""
        self._trim(now)
        held = sum(amount for _, amount in self.log)
        if not self.log or held + cost <= self.capacity:
            return 0.0
        last = len(self.log) - 1
        for index, (at, amount) in enumerate(self.log):
            held -= amount
            if index == last or held + cost <= self.capacity:
                return max(0.001, at + self.window - now)
        return 0.0  # not reached: the last entry always returns

    def charge(self, cost: float, now: float) -> list[float]:
        entry = [now, cost]
        self.log.append(entry)
        return entry


class _Bucket:
    """A token bucket: ``capacity`` (the window's allowance), refilled at ``rate`` a second."""

    def __init__(self, per_minute: int, window: float, now: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = per_minute * window / 60.0
        self.level = self.capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait(self, cost: float) -> float:
        """Seconds until ``cost`` fits (0 when it fits now; a cost above capacity, when full)."""
        return max(0.0, (min(cost, self.capacity) - self.level) / self.rate)

    def charge(self, cost: float) -> float:
        """Take ``cost`` (at most what the bucket holds: a big request empties it); the charge."""
        charged = min(cost, self.level) if cost > self.capacity else cost
        self.level -= charged
        return charged


@dataclass
class _Limits:
    tokens: _Bucket | _Window
    requests: _Bucket | _Window


class _QuietServer(ThreadingHTTPServer):
    """Says nothing when a client hangs up first (it timed out on a slow reply)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError):
            super().handle_error(request, client_address)


class JsonHandler(BaseHTTPRequestHandler):
    """A request handler that answers JSON (or text) and logs nothing: the fakes' shared part."""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class LoopbackServer:
    """An HTTP server on 127.0.0.1 in a background thread: the fakes' shared start and stop.

    A subclass calls :meth:`_serve` with its request handler in ``__init__``.
    """

    _server: ThreadingHTTPServer
    _thread: threading.Thread

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        # A short poll keeps stop() quick (shutdown waits for the loop to look again).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def _address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FakeAzureOpenAI(LoopbackServer):
    """The fake server; start it with ``with`` or :meth:`start`."""

    def __init__(
        self,
        *,
        api_key: str = "test-key-0123456789",
        deployment: str = "gpt-4o",
        delay: float = 0.0,
        reply_text: Callable[[list[dict[str, Any]]], str] = default_reply_text,
        ad_token: str | None = None,
        tpm: int | None = None,
        rpm: int | None = None,
        window: float = 10.0,
        judge_deployment: str | None = None,
        judge_tpm: int | None = None,
        judge_rpm: int | None = None,
        judge_verdict: Callable[[str], bool] = lambda prompt: True,
        limiter: Literal["bucket", "sliding"] = "bucket",
        estimate: Literal["simple", "strict"] = "simple",
        latency: tuple[float, float] | None = None,
        judge_rationale_words: int = 0,
        unbounded_tokens: int = UNBOUNDED_TOKENS,
        judge_status: int = 200,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_key = api_key
        self.ad_token = ad_token
        self.deployment = deployment
        self.judge_deployment = judge_deployment
        self.delay = delay
        self.reply_text = reply_text
        self.judge_verdict = judge_verdict
        self.window = window
        self.limiter = limiter
        self.estimate = estimate
        self.latency = latency
        self.judge_rationale_words = judge_rationale_words
        self.unbounded_tokens = unbounded_tokens
        self.judge_status = judge_status
        #: The rate limiter's time (a test shares its pacer's simulated clock with the fake).
        self.clock = clock
        self._random = random.Random(0)
        #: The answer times drawn for ``latency``.
        self.latencies: list[float] = []
        self.requests: list[RecordedRequest] = []
        #: Requests let through by the rate limiter, and the number refused with 429.
        self.admitted: list[Admission] = []
        self.throttled = 0
        self._limits: dict[str, _Limits] = {}
        self._lock = threading.Lock()
        for name, t, r in ((deployment, tpm, rpm), (judge_deployment, judge_tpm, judge_rpm)):
            if name is not None and t is not None:
                self.set_limits(name, t, r)
        self._script: deque[Reply] = deque()
        self._serve(self._handler())

    @property
    def endpoint(self) -> str:
        """The Azure-style endpoint, like ``https://<name>.openai.azure.com/``."""
        return f"{self._address}/"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL."""
        return self.endpoint + "v1"

    def set_limits(self, deployment: str, tpm: int, rpm: int | None = None) -> None:
        """Enforce ``tpm`` (and ``rpm``, else 6 per 1,000 TPM) on ``deployment``, buckets full."""
        requests = rpm if rpm is not None else max(1, tpm * 6 // 1000)
        with self._lock:
            if self.limiter == "sliding":
                limits = _Limits(_Window(tpm, self.window), _Window(requests, self.window))
            else:
                now = self.clock()
                limits = _Limits(
                    _Bucket(tpm, self.window, now), _Bucket(requests, self.window, now)
                )
            self._limits[deployment] = limits

    def admission_tokens(self, body: dict[str, Any]) -> int:
        """What this fake counts against TPM for ``body`` (its ``estimate``)."""
        if self.estimate == "simple":
            return admission_tokens(body, self.unbounded_tokens)
        prompt = sum(
            strict_prompt_tokens(str(m.get("content") or "")) + 3
            for m in body.get("messages") or []
            if isinstance(m, dict)
        )
        completion = body.get("max_tokens") or body.get("max_completion_tokens")
        return prompt + int(completion or self.unbounded_tokens)

    def _admit(self, deployment: str, body: dict[str, Any]) -> tuple[float, Callable[[int], None]]:
        """(0, refund) when the request is admitted (and charged), else (seconds to wait, _).

        ``refund(used)``: a request without max_tokens holds its reservation only until
        it is answered; then what it used counts instead.
        """
        tokens = self.admission_tokens(body)
        judge = is_judge_prompt(body.get("messages") or [])
        unbounded = not (body.get("max_tokens") or body.get("max_completion_tokens"))

        def nothing(used: int) -> None:
            pass

        with self._lock:
            limits = self._limits.get(deployment)
            now = self.clock()
            if limits is None:
                self.admitted.append(Admission(deployment, now, tokens, judge))
                return 0.0, nothing
            if isinstance(limits.tokens, _Window) and isinstance(limits.requests, _Window):
                wait = max(limits.tokens.wait(tokens, now), limits.requests.wait(1, now))
                if wait > 0:
                    self.throttled += 1
                    return wait, nothing
                entry = limits.tokens.charge(tokens, now)
                limits.requests.charge(1, now)

                def refund(used: int) -> None:
                    with self._lock:
                        entry[1] = min(entry[1], used)

            else:
                assert isinstance(limits.tokens, _Bucket) and isinstance(limits.requests, _Bucket)
                limits.tokens.refill(now)
                limits.requests.refill(now)
                wait = max(limits.tokens.wait(tokens), limits.requests.wait(1))
                if wait > 0:
                    self.throttled += 1
                    return wait, nothing
                charged = limits.tokens.charge(tokens)
                limits.requests.charge(1)
                bucket = limits.tokens

                def refund(used: int) -> None:
                    with self._lock:
                        bucket.level = min(bucket.capacity, bucket.level + max(0, charged - used))

            self.admitted.append(Admission(deployment, now, tokens, judge))
            return 0.0, refund if unbounded else nothing

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order, then normally again."""
        with self._lock:
            self._script.extend(replies)

    def _latency(self) -> float:
        """The answer's random latency (``latency``), 0 without one."""
        if self.latency is None:
            return 0.0
        with self._lock:
            drawn = self._random.uniform(*self.latency)
            self.latencies.append(drawn)
            return drawn

    def _next(self) -> Reply | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        """The normal answer to a request body: Azure's JSON, ``usage`` counted from the words."""
        messages = body.get("messages") or []
        if is_judge_prompt(messages):
            prompt = str(messages[-1].get("content") or "")
            verdict = "yes" if self.judge_verdict(prompt) else "no"
            meets = "meets" if verdict == "yes" else "does not meet"
            rationale = f"Let's think step by step. The response {meets} the guidelines."
            rationale += " Indeed" * self.judge_rationale_words
            text = json.dumps({"rationale": rationale, "result": verdict})
        else:
            text = self.reply_text(messages)
        prompt_tokens = sum(_tokens(str(m.get("content", ""))) + 4 for m in messages)
        completion_tokens = _tokens(text)
        finish_reason = "stop"
        budget = body.get("max_tokens")
        if isinstance(budget, int) and completion_tokens > budget:
            text = " ".join(text.split()[:budget])
            completion_tokens, finish_reason = budget, "length"
        return {
            "id": f"chatcmpl-fake{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "gpt-4o-2024-11-20",
            "system_fingerprint": "fp_fake",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": finish_reason,
                    "logprobs": None,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "content_filter_results": {},
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(JsonHandler):
            def _keyless_denial(self) -> tuple[int, dict[str, Any]] | None:
                """Azure's answer to a keyless account's request, None when it may pass."""
                if self.headers.get("api-key") is not None:
                    message = "Key based authentication is disabled for this resource."
                    code = "AuthenticationTypeDisabled"
                    return 403, {"error": {"code": code, "message": message}}
                if self.headers.get("Authorization") != f"Bearer {fake.ad_token}":
                    message = "Unauthorized. Access token is missing, invalid, audience is "
                    message += "incorrect (https://cognitiveservices.azure.com), or have expired."
                    return 401, {"error": {"code": "PermissionDenied", "message": message}}
                return None

            def do_POST(self) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = raw.decode(errors="replace")
                with fake._lock:
                    fake.requests.append(
                        RecordedRequest(
                            "POST", url.path, parse_qs(url.query), dict(self.headers), body
                        )
                    )
                served = [fake.deployment, fake.judge_deployment]
                azure_paths = {
                    f"/openai/deployments/{name}/chat/completions": name
                    for name in served
                    if name is not None
                }
                deployment = fake.deployment
                if url.path.startswith("/openai/deployments/"):
                    if fake.ad_token is not None:
                        denied = self._keyless_denial()
                        if denied is not None:
                            return self._send(*denied)
                    elif self.headers.get("api-key") != fake.api_key:
                        return self._send(
                            401,
                            {
                                "error": {
                                    "code": "401",
                                    "message": "Access denied due to invalid subscription key "
                                    "or wrong API endpoint. Make sure to provide a valid key "
                                    "for an active subscription and use a correct regional "
                                    "API endpoint for your resource.",
                                }
                            },
                        )
                    if url.path not in azure_paths:
                        return self._send(
                            404,
                            {
                                "error": {
                                    "code": "DeploymentNotFound",
                                    "message": "The API deployment for this resource does not "
                                    "exist.",
                                }
                            },
                        )
                    if "api-version" not in parse_qs(url.query):
                        return self._send(
                            404, {"error": {"code": "404", "message": "Resource not found"}}
                        )
                    deployment = azure_paths[url.path]
                elif url.path == "/v1/chat/completions":
                    if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                        return self._send(
                            401, {"error": {"message": "Incorrect API key provided."}}
                        )
                else:
                    return self._send(404, {"error": {"code": "404", "message": "Not found"}})

                wait, refund = fake._admit(deployment, body if isinstance(body, dict) else {})
                if wait > 0:
                    limited = Reply.rate_limited(retry_after=str(math.ceil(wait)))
                    headers = {**limited.headers, "retry-after-ms": str(math.ceil(wait * 1000))}
                    return self._send(429, limited.body, headers)
                scripted = fake._next()
                time.sleep(fake.delay + (scripted.delay if scripted else 0.0) + fake._latency())
                if scripted is not None and (scripted.status != 200 or scripted.body is not None):
                    refund(0)
                    answer = scripted.body if scripted.body is not None else {}
                    return self._send(scripted.status, answer, scripted.headers)
                messages = body.get("messages") if isinstance(body, dict) else None
                if fake.judge_status != 200 and is_judge_prompt(messages or []):
                    refund(0)
                    return self._send(fake.judge_status, Reply.server_error().body)
                completion = fake.completion(body if isinstance(body, dict) else {})
                refund(int(completion["usage"]["total_tokens"]))
                return self._send(200, completion, scripted.headers if scripted else None)

        return Handler
