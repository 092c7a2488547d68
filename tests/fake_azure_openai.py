"""A local fake of the Azure OpenAI REST API (and the plain OpenAI one), over a real socket.

``POST /openai/deployments/<name>/chat/completions?api-version=...`` with an
``api-key`` header answers with the JSON Azure returns (``choices``,
``usage`` ...); ``POST /v1/chat/completions`` with ``Authorization: Bearer``
stands in for an OpenAI-compatible server. Replies can be scripted (429 with
Retry-After, 500, 401, a body that is not JSON) and every request is recorded.

    with FakeAzureOpenAI(api_key="k") as fake:
        fake.script(Reply(429, headers={"Retry-After": "0"}))   # then the default success
        ... AZURE_OPENAI_ENDPOINT=fake.endpoint ...
        assert len(fake.requests) == 2
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

__all__ = ["FakeAzureOpenAI", "RecordedRequest", "Reply", "default_reply_text"]

JOKE = "Why don't elephants use computers? They're afraid of the mouse!"


def default_reply_text(messages: list[dict[str, Any]]) -> str:
    """The assistant's answer: the same joke for every prompt."""
    return JOKE


@dataclass(frozen=True)
class Reply:
    """One scripted answer; ``body`` None means the normal completion."""

    status: int = 200
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


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


class FakeAzureOpenAI:
    """The fake server; start it with ``with`` or :meth:`start`."""

    def __init__(
        self,
        *,
        api_key: str = "test-key-0123456789",
        deployment: str = "gpt-4o",
        delay: float = 0.0,
        reply_text: Callable[[list[dict[str, Any]]], str] = default_reply_text,
    ) -> None:
        self.api_key = api_key
        self.deployment = deployment
        self.delay = delay
        self.reply_text = reply_text
        self.requests: list[RecordedRequest] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The Azure-style endpoint, like ``https://<name>.openai.azure.com/``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL."""
        return self.endpoint + "v1"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order, then normally again."""
        with self._lock:
            self._script.extend(replies)

    def start(self) -> FakeAzureOpenAI:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeAzureOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next(self) -> Reply | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body.get("messages") or []
        text = self.reply_text(messages)
        prompt_tokens = sum(_tokens(str(m.get("content", ""))) + 4 for m in messages)
        completion_tokens = _tokens(text)
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
                    "finish_reason": "stop",
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

        class Handler(BaseHTTPRequestHandler):
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
                azure_path = f"/openai/deployments/{fake.deployment}/chat/completions"
                if url.path.startswith("/openai/deployments/"):
                    if self.headers.get("api-key") != fake.api_key:
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
                    if url.path != azure_path:
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
                elif url.path == "/v1/chat/completions":
                    if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                        return self._send(
                            401, {"error": {"message": "Incorrect API key provided."}}
                        )
                else:
                    return self._send(404, {"error": {"code": "404", "message": "Not found"}})

                scripted = fake._next()
                time.sleep(fake.delay + (scripted.delay if scripted else 0.0))
                if scripted is not None and (scripted.status != 200 or scripted.body is not None):
                    return self._send(scripted.status, scripted.body or {}, scripted.headers)
                return self._send(200, fake._completion(body if isinstance(body, dict) else {}))

        return Handler
