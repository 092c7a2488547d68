"""No credential a service echoes back reaches this process's errors, logs or traces.

A service may repeat what it was sent in an error's text (``the token XYZ was not
expected``). The OpenAI SDK builds its exception from that text, and MLflow's
autolog records the exception on the trace before any of our code sees it; so
the credential is masked where the answer comes in: in the HTTP transport, before
the SDK reads the body. Whatever this request carried (the ``api-key`` header, the
``Authorization`` bearer, a key or an Entra ID token alike) is replaced by
:data:`workload.contract.SECRET_MASK` in an error answer's body.
"""

from __future__ import annotations

from typing import Final

import httpx2

from workload.contract import SECRET_MASK

__all__ = ["MaskingTransport", "sent_credentials"]

#: Shorter values are not credentials worth masking (and would mangle ordinary text).
_MIN_SECRET: Final = 8


def sent_credentials(request: httpx2.Request) -> list[str]:
    """The credentials a request carries: its ``api-key`` and its bearer token."""
    found = [request.headers.get("api-key", "")]
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        found.append(token)
    return [value.strip() for value in found if len(value.strip()) >= _MIN_SECRET]


class MaskingTransport(httpx2.BaseTransport):
    """Sends through ``inner``; an error answer comes back with the request's credentials masked."""

    def __init__(self, inner: httpx2.BaseTransport | None = None) -> None:
        self._inner = inner or httpx2.HTTPTransport()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send, and mask the credentials this request carried in an error's body."""
        response = self._inner.handle_request(request)
        secrets = sent_credentials(request)
        if response.status_code < 400 or not secrets:
            return response
        body = response.read()
        masked = body
        for secret in secrets:
            masked = masked.replace(secret.encode(), SECRET_MASK.encode())
        if masked == body:
            return response
        response.close()
        headers = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        ]
        return httpx2.Response(
            response.status_code,
            headers=headers,
            content=masked,
            request=request,
            extensions=response.extensions,
        )

    def close(self) -> None:
        """Close the connections."""
        self._inner.close()
