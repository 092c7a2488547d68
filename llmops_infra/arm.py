"""A small Azure Resource Manager client: credentials, retries and long-running operations.

Shared by the purge-on-destroy provider (:mod:`llmops_infra.purge`) and
``python -m llmops_infra preflight``. It speaks plain HTTPS through the
standard library, with a bearer token from ``azure-identity``; the base URL
can be pointed elsewhere (``LLMOPS_ARM_ENDPOINT``) so tests use a local fake.

Azure facts used here, from the Cognitive Services management REST API
(stable ``2025-06-01``): ``DeletedAccounts_Purge`` is a long-running ``DELETE``
answering 200, 202 (poll ``Azure-AsyncOperation`` or ``Location``) or 204;
lists page through ``nextLink``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

__all__ = [
    "API_VERSION",
    "ARM_ENDPOINT_ENV",
    "ArmClient",
    "ArmError",
    "ArmResponse",
    "ArmUnavailable",
    "default_credential",
]

#: Cognitive Services management API version (stable), for every call made here.
API_VERSION: Final = "2025-06-01"
#: Overrides the Resource Manager base URL (tests point it at a local fake).
ARM_ENDPOINT_ENV: Final = "LLMOPS_ARM_ENDPOINT"
DEFAULT_ENDPOINT: Final = "https://management.azure.com"
ARM_SCOPE: Final = "https://management.azure.com/.default"

#: Statuses worth another try: throttling and the server's own transient failures.
_TRANSIENT: Final = frozenset({408, 429, 500, 502, 503, 504})
_TERMINAL_LRO: Final = {"succeeded", "failed", "canceled", "cancelled"}


class ArmError(Exception):
    """Azure Resource Manager refused a request, or it still failed after retries."""

    def __init__(self, message: str, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status, when Azure answered at all."""
        self.code = code
        """Azure's error code (``AuthorizationFailed`` ...), when it sent one."""


class ArmUnavailable(ArmError):
    """No usable credentials, or Azure Resource Manager could not be reached."""


def default_credential() -> TokenCredential:
    """The Azure CLI login or a service principal, as Pulumi's azure-native finds them.

    ``ARM_CLIENT_ID``/``ARM_CLIENT_SECRET``/``ARM_TENANT_ID`` (what Pulumi users set)
    become a client-secret credential; otherwise ``DefaultAzureCredential`` reads
    ``AZURE_*`` variables, a managed identity or ``az login``, never a browser.
    """
    from azure.identity import ClientSecretCredential, DefaultAzureCredential

    # Its chain logs every failed attempt as a multi-line warning; the failure is reported
    # once, as one line, by ArmClient.
    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    client_id = os.environ.get("ARM_CLIENT_ID")
    secret = os.environ.get("ARM_CLIENT_SECRET")
    tenant = os.environ.get("ARM_TENANT_ID")
    if client_id and secret and tenant:
        return ClientSecretCredential(tenant, client_id, secret)
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


@dataclass(frozen=True)
class ArmResponse:
    """One HTTP answer: status, headers (lower-case names) and the JSON body, if any."""

    status: int
    headers: Mapping[str, str]
    body: Any


@dataclass
class ArmClient:
    """Requests to Resource Manager with retries (429, 5xx) and long-running operation polling."""

    credential: TokenCredential
    endpoint: str = field(
        default_factory=lambda: os.environ.get(ARM_ENDPOINT_ENV) or DEFAULT_ENDPOINT
    )
    max_attempts: int = 6
    """Tries per request before a transient failure is final."""
    base_delay: float = 2.0
    """First backoff in seconds, doubled per retry, when Azure sends no ``Retry-After``."""
    max_delay: float = 60.0
    poll_interval: float = 10.0
    """Seconds between polls of a long-running operation without ``Retry-After``."""
    lro_timeout: float = 1800.0
    """Seconds of polling (the sum of the waits) before giving up on an operation."""
    request_timeout: float = 60.0
    sleep: Callable[[float], None] = field(default_factory=lambda: _sleep)
    """How to wait (tests replace :func:`_sleep`, or pass their own)."""
    _token: str | None = field(default=None, init=False, repr=False)

    def url(self, path: str, api_version: str = API_VERSION) -> str:
        """The absolute URL of an ARM path with its ``api-version``."""
        query = urllib.parse.urlencode({"api-version": api_version})
        return f"{self.endpoint.rstrip('/')}{path}?{query}"

    def request(self, method: str, url: str) -> ArmResponse:
        """Send once per attempt; retry transient failures; raise :class:`ArmError` on others."""
        delay = self.base_delay
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self._send(method, url)
            except (TimeoutError, ConnectionResetError) as err:
                if attempt == self.max_attempts:
                    raise ArmUnavailable(
                        f"{method} {_path(url)}: no answer from Azure Resource Manager "
                        f"after {attempt} tries ({err})"
                    ) from None
                self.sleep(delay)
                delay = min(delay * 2, self.max_delay)
                continue
            if response.status not in _TRANSIENT:
                return response
            if attempt == self.max_attempts:
                raise _error(method, url, response, f" (still failing after {attempt} tries)")
            self.sleep(_retry_after(response.headers, delay, self.max_delay))
            delay = min(delay * 2, self.max_delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def get_json(self, path: str, api_version: str = API_VERSION) -> Any:
        """GET a resource; its JSON body."""
        url = self.url(path, api_version)
        response = self.request("GET", url)
        if response.status != 200:
            raise _error("GET", url, response)
        return response.body

    def list_all(self, path: str, api_version: str = API_VERSION) -> list[dict[str, Any]]:
        """Every item of a paged list, following ``nextLink``."""
        items: list[dict[str, Any]] = []
        url: str | None = self.url(path, api_version)
        while url:
            response = self.request("GET", url)
            if response.status != 200:
                raise _error("GET", url, response)
            body = response.body if isinstance(response.body, dict) else {}
            items.extend(v for v in body.get("value") or [] if isinstance(v, dict))
            url = body.get("nextLink") or None
        return items

    def delete(self, path: str, api_version: str = API_VERSION) -> bool:
        """DELETE and wait for the operation to finish; False when there was nothing (404)."""
        url = self.url(path, api_version)
        response = self.request("DELETE", url)
        if response.status == 404:
            return False
        if response.status in (200, 204):
            return True
        if response.status == 202:
            self._wait(url, response)
            return True
        raise _error("DELETE", url, response)

    def _wait(self, url: str, accepted: ArmResponse) -> None:
        """Poll a long-running operation to its end, as ARM's async pattern describes."""
        async_url = accepted.headers.get("azure-asyncoperation")
        location = accepted.headers.get("location")
        monitor = async_url or location
        if not monitor:
            return  # 202 without a monitor: accepted, nothing to follow
        waited = 0.0
        last = accepted
        while True:
            pause = _retry_after(last.headers, self.poll_interval, self.max_delay)
            self.sleep(pause)
            waited += pause
            last = self.request("GET", monitor)
            if async_url:
                if last.status != 200:
                    raise _error("GET", monitor, last, f" while waiting for {_path(url)}")
                status = str((last.body or {}).get("status", "")).lower()
                if status == "succeeded":
                    return
                if status in _TERMINAL_LRO:
                    raise _error("GET", monitor, last, f": the operation on {_path(url)} {status}")
            else:
                if last.status in (200, 204):
                    return
                if last.status != 202:
                    raise _error("GET", monitor, last, f" while waiting for {_path(url)}")
            if waited > self.lro_timeout:
                raise ArmError(
                    f"{_path(url)}: still running after {self.lro_timeout:.0f} s; "
                    "check the Azure portal's activity log"
                )

    def _bearer(self) -> str:
        if self._token is None:
            try:
                self._token = self.credential.get_token(ARM_SCOPE).token
            except Exception as err:  # azure-identity raises several unrelated types
                first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
                raise ArmUnavailable(
                    "no usable Azure credentials: run `az login`, or set ARM_CLIENT_ID, "
                    "ARM_CLIENT_SECRET and ARM_TENANT_ID (or the AZURE_* equivalents)"
                    + (f" ({type(err).__name__}: {first_line})" if first_line else "")
                ) from None
        return self._token

    def _send(self, method: str, url: str) -> ArmResponse:
        request = urllib.request.Request(
            url,
            method=method,
            headers={"Authorization": f"Bearer {self._bearer()}", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.request_timeout) as answer:
                return _response(answer.status, answer.headers, answer.read())
        except urllib.error.HTTPError as err:
            return _response(err.code, err.headers, err.read())
        except urllib.error.URLError as err:
            reason = err.reason
            if isinstance(reason, TimeoutError | socket.timeout | ConnectionResetError):
                raise TimeoutError(str(reason)) from None
            raise ArmUnavailable(
                f"cannot reach Azure Resource Manager at {self.endpoint} ({reason})"
            ) from None


def _sleep(seconds: float) -> None:
    # An event's wait, not time.sleep: llmops_infra imports no clock (tests/test_stack.py).
    threading.Event().wait(seconds)


def _response(status: int, headers: Any, raw: bytes) -> ArmResponse:
    lowered = {str(k).lower(): str(v) for k, v in headers.items()} if headers else {}
    body: Any = None
    if raw:
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
    return ArmResponse(status, lowered, body)


def _retry_after(headers: Mapping[str, str], default: float, cap: float) -> float:
    value = headers.get("retry-after")
    if value is not None:
        try:
            return min(max(float(value), 0.0), cap)
        except ValueError:
            pass  # an HTTP date: fall back to our own backoff
    return default


def _path(url: str) -> str:
    """The URL's path without host or query: what a message needs, never a token."""
    return urllib.parse.urlsplit(url).path


def _error(method: str, url: str, response: ArmResponse, note: str = "") -> ArmError:
    code, message = "", ""
    body = response.body
    if isinstance(body, dict):
        error = body.get("error")
        detail: dict[str, Any] = error if isinstance(error, dict) else body
        code = str(detail.get("code") or "")
        message = str(detail.get("message") or "")
    elif isinstance(body, str):
        message = body.strip()[:300]
    text = f"{method} {_path(url)} failed: HTTP {response.status}"
    if code:
        text += f" {code}"
    if message:
        text += f": {message}"
    return ArmError(text + note, status=response.status, code=code)
