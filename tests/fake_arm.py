"""A local fake of Azure Resource Manager: a real HTTP server on 127.0.0.1, scripted per path.

Each route maps ``(METHOD, path)`` to a list of answers served in turn (the last
one repeats). Every request is recorded with its path, query and headers, so a
test can check the exact call Azure would have received. The bodies are what
ARM sends, in the JSON shapes of azure-mgmt-cognitiveservices' models
(``ModelListResult``, ``UsageListResult``, ``AccountListResult``); lists page
through ``nextLink`` as ARM's do.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from azure.core.credentials import AccessToken

__all__ = [
    "Answer",
    "FakeArm",
    "FakeCredential",
    "Recorded",
    "deleted_account",
    "fake_arm",
    "model",
    "usage",
]

TOKEN = "fake-arm-token-never-printed"


@dataclass(frozen=True)
class Answer:
    """One scripted response; ``{base}`` in a header value becomes the server's URL."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class FakeArm:
    """The server's script and what it saw."""

    base: str = ""
    routes: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    def on(self, method: str, path: str, *answers: Answer) -> None:
        """Script the answers to ``method path`` (the last one repeats)."""
        self.routes[(method, path)] = list(answers)

    def calls(self, method: str, path: str) -> list[Recorded]:
        """The requests made to one route."""
        return [r for r in self.requests if r.method == method and r.path == path]


class FakeCredential:
    """Stands in for an azure-identity credential; counts the token requests."""

    def __init__(self, error: Exception | None = None) -> None:
        self.scopes: list[tuple[str, ...]] = []
        self.error = error

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        self.scopes.append(scopes)
        if self.error is not None:
            raise self.error
        return AccessToken(TOKEN, 2**31)


def model(
    name: str,
    version: str,
    skus: tuple[str, ...] = ("Standard", "GlobalStandard"),
    default: bool = True,
    kind: str = "OpenAI",
) -> dict[str, Any]:
    """One entry of ``GET .../locations/{location}/models``: ``Model`` around ``AccountModel``."""
    return {
        "kind": kind,
        "skuName": "S0",
        "description": f"{name} {version}",
        "model": {
            "publisher": "OpenAI",
            "format": "OpenAI",
            "name": name,
            "version": version,
            "isDefaultVersion": default,
            "lifecycleStatus": "GenerallyAvailable",
            "maxCapacity": 1000,
            "capabilities": {"chatCompletion": "true"},
            "skus": [
                {
                    "name": sku,
                    "usageName": f"OpenAI.{sku}.{name}",
                    "capacity": {"minimum": 1, "maximum": 1000, "step": 1, "default": 10},
                }
                for sku in skus
            ],
        },
    }


def usage(limit: float, used: float, name: str = "OpenAI.Standard.gpt-4o") -> dict[str, Any]:
    """One entry of ``GET .../locations/{location}/usages`` (``Usage``)."""
    return {
        "name": {"value": name, "localizedValue": name},
        "limit": limit,
        "currentValue": used,
        "unit": "Count",
    }


def deleted_account(subscription: str, name: str, group: str, location: str) -> dict[str, Any]:
    """One entry of ``GET .../deletedAccounts`` (``Account``)."""
    return {
        "id": (
            f"/subscriptions/{subscription}/providers/Microsoft.CognitiveServices/locations/"
            f"{location}/resourceGroups/{group}/deletedAccounts/{name}"
        ),
        "name": name,
        "type": "Microsoft.CognitiveServices/accounts",
        "kind": "OpenAI",
        "location": location,
        "properties": {"deletionDate": "2026-11-28T10:00:00Z"},
    }


def _handler(state: FakeArm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            state.requests.append(
                Recorded(
                    self.command,
                    parts.path,
                    urllib.parse.parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                )
            )
            answers = state.routes.get((self.command, parts.path))
            if not answers:
                answer = Answer(404, {"error": {"code": "NotFound", "message": "no route"}})
            else:
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
            raw = b"" if answer.body is None else json.dumps(answer.body).encode()
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value.replace("{base}", state.base))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = _serve
        do_DELETE = _serve

    return Handler


@contextmanager
def fake_arm() -> Iterator[FakeArm]:
    """Run the fake on a free port of 127.0.0.1 for the block's duration."""
    state = FakeArm()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)
