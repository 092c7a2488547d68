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

import re
from typing import Final

import httpx2

from workload.contract import SECRET_MASK

__all__ = ["MaskingTransport", "mask_secret", "sent_credentials"]

#: Shorter values are not credentials worth masking (and would mangle ordinary text).
_MIN_SECRET: Final = 8


def mask_secret(text: str, secret: str) -> str:
    """``text`` with ``secret`` replaced by :data:`~workload.contract.SECRET_MASK`.

    A credential of :data:`_MIN_SECRET` characters or more is masked wherever it appears;
    a shorter one (a placeholder, a key typed for a test) only where it stands alone, so a
    one-letter key ``k`` leaves "check the key" as it is instead of "chec[secret] the
    [secret]ey".
    """
    if not secret:
        return text
    if len(secret) >= _MIN_SECRET:
        return text.replace(secret, SECRET_MASK)
    alone = rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])"
    return re.sub(alone, lambda _: SECRET_MASK, text)


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
