"""A local fake of a Databricks workspace's serving endpoints (AI Gateway in front), over a socket.

Each endpoint is an external model in front of a deployment of a
:class:`fake_azure_openai.FakeAzureOpenAI` (the upstream): the endpoint forwards an
admitted request there with the Azure key, as the real endpoint does with the key
from its secret, and passes the answer back. So the caller never holds the key, and
the upstream's own rate limits and scripted replies still apply behind the gateway.

    with FakeAzureOpenAI() as azure, FakeDatabricks(azure) as workspace:
        workspace.add_endpoint("llmops-gpt-4o", "gpt-4o")
        token = workspace.add_user("alice@example.com")          # CAN_QUERY on every endpoint
        ... DATABRICKS_HOST=workspace.host, DATABRICKS_TOKEN=token ...

It speaks the OpenAI chat protocol where Databricks does (Microsoft Learn, Azure
Databricks "Query chat models" and "Query foundation models", read 2026-12-05):
``POST /serving-endpoints/chat/completions`` with the endpoint's name as ``model``,
and ``POST /serving-endpoints/<name>/invocations``.
What the gateway adds:

* ``Authorization: Bearer <token>`` of a known user, else 401; a user without
  ``CAN_QUERY`` on the endpoint gets 403; an unknown endpoint 404.
* a per-user token limit (``user_tpm``): each user's bucket on each endpoint holds
  ``window`` seconds' worth of the limit and refills at its rate; a request is refused with 429 and
  ``Retry-After`` while the bucket is below zero, and an answer's ``total_tokens``
  are taken from it after it is served (the gateway counts what was used).
* guardrails (``guardrails=True``): a request whose messages carry an e-mail address
  (PII) is refused with 400 and a message naming the input guardrail.

Every request is recorded with its arrival time. ``/.well-known/databricks-config``
answers as a workspace does, for the SDK's discovery probe.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from fake_azure_openai import FakeAzureOpenAI, JsonHandler, LoopbackServer, Reply

__all__ = ["FakeDatabricks", "GatewayRequest"]

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
_API_VERSION = "2024-05-01-preview"


@dataclass(frozen=True)
class GatewayRequest:
    """What the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    """Names in lower case."""
    body: Any
    at: float
    """``time.monotonic()`` on arrival."""
    user: str | None
    """The caller, by its token; None for an unknown token."""


@dataclass
class _UserBucket:
    """One user's token allowance: ``per_minute * window / 60`` at most, refilled steadily."""

    per_minute: int
    window: float
    level: float = field(init=False)
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.level = self.per_minute * self.window / 60.0

    def refill(self, now: float) -> None:
        rate = self.per_minute / 60.0
        self.level = min(
            self.per_minute * self.window / 60.0, self.level + (now - self.stamp) * rate
        )
        self.stamp = now

    def wait(self) -> float:
        """Seconds until the bucket is back at zero (0 when it is not below)."""
        return max(0.0, -self.level / (self.per_minute / 60.0))


class FakeDatabricks(LoopbackServer):
    """The fake workspace; start it with ``with`` or :meth:`start`."""

    def __init__(
        self,
        upstream: FakeAzureOpenAI,
        *,
        user_tpm: int | None = None,
        window: float = 60.0,
        guardrails: bool = False,
    ) -> None:
        self.upstream = upstream
        self.user_tpm = user_tpm
        self.window = window
        self.guardrails = guardrails
        self.endpoints: dict[str, str] = {}
        """Serving endpoint name -> the upstream deployment it serves."""
        self.users: dict[str, str] = {}
        """Bearer token -> user name."""
        self.without_can_query: set[str] = set()
        """Users who may not query any endpoint (not in the group the stack grants it to)."""
        self.requests: list[GatewayRequest] = []
        self.throttled = 0
        self.refused_by_guardrails = 0
        self._buckets: dict[tuple[str, str], _UserBucket] = {}
        self._debts: dict[tuple[str, str], int] = {}
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._serve(self._handler())

    @property
    def host(self) -> str:
        """The workspace URL, like ``https://adb-<id>.<n>.azuredatabricks.net``."""
        return self._address

    def add_endpoint(self, name: str, deployment: str) -> None:
        """Serve ``deployment`` of the upstream as endpoint ``name``."""
        with self._lock:
            self.endpoints[name] = deployment

    def add_user(self, name: str, *, can_query: bool = True) -> str:
        """A workspace user (with CAN_QUERY on every endpoint, unless not); its token."""
        token = "dapi" + secrets.token_hex(16)
        with self._lock:
            self.users[token] = name
            if not can_query:
                self.without_can_query.add(name)
        return token

    def spend(self, user: str, endpoint: str, tokens: int) -> None:
        """Take ``tokens`` from ``user``'s allowance on ``endpoint`` when its next request
        arrives, as calls just before it would have (however late the request comes)."""
        with self._lock:
            self._debts[user, endpoint] = self._debts.get((user, endpoint), 0) + tokens

    def script(self, *replies: Reply) -> None:
        """Answer the next admitted requests with these replies, in order, then normally."""
        with self._lock:
            self._script.extend(replies)

    def _bucket(self, user: str, endpoint: str) -> _UserBucket:
        assert self.user_tpm is not None
        bucket = self._buckets.get((user, endpoint))
        if bucket is None:
            bucket = self._buckets[user, endpoint] = _UserBucket(self.user_tpm, self.window)
        return bucket

    def _throttle(self, user: str, endpoint: str) -> float:
        """Seconds ``user`` must wait before querying ``endpoint`` (0: admitted)."""
        if self.user_tpm is None:
            return 0.0
        with self._lock:
            bucket = self._bucket(user, endpoint)
            bucket.refill(time.monotonic())
            bucket.level -= self._debts.pop((user, endpoint), 0)
            wait = bucket.wait()
            if wait > 0:
                self.throttled += 1
            return wait

    def _charge(self, user: str, endpoint: str, answer: Any) -> None:
        usage = answer.get("usage") if isinstance(answer, dict) else None
        used = usage.get("total_tokens") if isinstance(usage, dict) else None
        if self.user_tpm is not None and isinstance(used, int):
            with self._lock:
                self._bucket(user, endpoint).level -= used

    def _forward(self, deployment: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        """The upstream's answer to ``body``, asked with the key only the endpoint holds."""
        forwarded = {k: v for k, v in body.items() if k != "model"}
        request = urllib.request.Request(
            f"{self.upstream.endpoint}openai/deployments/{deployment}/chat/completions"
            f"?api-version={_API_VERSION}",
            data=json.dumps(forwarded).encode(),
            headers={"api-key": self.upstream.api_key, "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read()), {}
        except urllib.error.HTTPError as error:
            data = error.read()
            kept = {k: v for k, v in error.headers.items() if k.lower().startswith("retry-after")}
            try:
                return error.code, json.loads(data), kept
            except ValueError:
                return error.code, data.decode(errors="replace"), kept

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(JsonHandler):
            def _error(self, status: int, code: str, message: str, **headers: str) -> None:
                # Databricks' REST error shape.
                self._send(status, {"error_code": code, "message": message}, headers)

            def do_GET(self) -> None:
                if self.path == "/.well-known/databricks-config":
                    return self._send(
                        200,
                        {"oidc_endpoint": f"{fake.host}/oidc", "workspace_id": "1234567890123456"},
                    )
                return self._error(404, "ENDPOINT_NOT_FOUND", f"No API found for 'GET {self.path}'")

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                scheme, _, token = self.headers.get("Authorization", "").partition(" ")
                user = fake.users.get(token) if scheme == "Bearer" else None
                with fake._lock:
                    fake.requests.append(
                        GatewayRequest(
                            "POST",
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            time.monotonic(),
                            user,
                        )
                    )
                if self.path == "/serving-endpoints/chat/completions":
                    name = str(body.get("model") or "") if isinstance(body, dict) else ""
                else:
                    found = re.fullmatch(r"/serving-endpoints/([^/]+)/invocations", self.path)
                    if found is None:
                        return self._error(404, "ENDPOINT_NOT_FOUND", "No API found")
                    name = found.group(1)
                if user is None:
                    return self._error(401, "UNAUTHENTICATED", "Invalid access token.")
                deployment = fake.endpoints.get(name)
                if deployment is None:
                    return self._error(
                        404,
                        "RESOURCE_DOES_NOT_EXIST",
                        f"Endpoint with name '{name}' does not exist.",
                    )
                if user in fake.without_can_query:
                    return self._error(
                        403,
                        "PERMISSION_DENIED",
                        f"User '{user}' does not have permission 'CAN_QUERY' on endpoint '{name}'.",
                    )
                wait = fake._throttle(user, name)
                if wait > 0:
                    return self._error(
                        429,
                        "REQUEST_LIMIT_EXCEEDED",
                        f"Exceeded the per-user token rate limit of endpoint '{name}'.",
                        **{"Retry-After": str(math.ceil(wait))},
                    )
                messages = body.get("messages") if isinstance(body, dict) else None
                if fake.guardrails and _EMAIL.search(json.dumps(messages or [])):
                    with fake._lock:
                        fake.refused_by_guardrails += 1
                    return self._error(
                        400, "BAD_REQUEST", "Request blocked by input guardrail 'pii'."
                    )
                with fake._lock:
                    scripted = fake._script.popleft() if fake._script else None
                if scripted is not None and (scripted.status != 200 or scripted.body is not None):
                    return self._send(scripted.status, scripted.body or {}, scripted.headers)
                status, answer, headers = fake._forward(deployment, body)
                if status == 200:
                    fake._charge(user, name, answer)
                return self._send(status, answer, headers)

        return Handler
