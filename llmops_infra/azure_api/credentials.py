"""Who signs the Resource Manager requests of ``preflight`` and the purge.

docs/deploy.md fixes the order: ``LLMOPS_ARM_TOKEN`` (a bearer token used as is, e.g.
from ``az account get-access-token``), else azure-identity's credentials. Those
follow Pulumi's azure-native provider, so the purge on destroy signs in as the
stack's own Azure provider does: its stack configuration (``azure-native:clientId``,
``clientSecret``, ``tenantId``, ``useOidc`` with ``oidcToken``/``oidcTokenFilePath``/
``oidcRequestToken`` and ``oidcRequestUrl``, ``useMsi``), key by key before the
``ARM_*`` variables, and then ``DefaultAzureCredential`` (``AZURE_*``, workload and
managed identity, ``az login``), never a browser. Nothing here keeps a secret
beyond the credential object, nor prints one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from workload.errors import first_line

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, TokenCredential

__all__ = [
    "ARM_TOKEN_ENV",
    "StaticTokenCredential",
    "credential",
    "identity_keys",
    "identity_settings",
]

#: A bearer token for Resource Manager, used as is.
ARM_TOKEN_ENV: Final = "LLMOPS_ARM_TOKEN"
#: The azure-native provider's identity settings and the variables it falls back to,
#: in its own order (its configuration wins over the environment, key by key).
_IDENTITY_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "clientId": ("ARM_CLIENT_ID",),
    "clientSecret": ("ARM_CLIENT_SECRET",),
    "tenantId": ("ARM_TENANT_ID",),
    "useOidc": ("ARM_USE_OIDC",),
    "oidcToken": ("ARM_OIDC_TOKEN",),
    "oidcTokenFilePath": ("ARM_OIDC_TOKEN_FILE_PATH",),
    # A CI runner's token request (GitHub Actions sets the ACTIONS_* pair).
    "oidcRequestToken": ("ARM_OIDC_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    "oidcRequestUrl": ("ARM_OIDC_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_URL"),
    "useMsi": ("ARM_USE_MSI",),
}
_PROVIDER_NAMESPACE: Final = "azure-native"
#: The audience Azure AD expects of a federated token (workload identity federation).
_FEDERATION_AUDIENCE: Final = "api://AzureADTokenExchange"


@dataclass(frozen=True)
class StaticTokenCredential:
    """A bearer token handed over as is (``LLMOPS_ARM_TOKEN``); Azure says when it expired."""

    token: str = field(repr=False)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """The same token for every scope; its expiry is Azure's to judge (401)."""
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, 2**62)


def identity_keys() -> tuple[str, ...]:
    """The stack configuration keys of azure-native's identity (``azure-native:clientId`` ...)."""
    return tuple(f"{_PROVIDER_NAMESPACE}:{key}" for key in _IDENTITY_KEYS)


def identity_settings(
    config: Callable[[str], Any] | None = None, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The azure-native identity settings: stack configuration first, then ``ARM_*``.

    ``config(key)`` reads the stack's configuration as Pulumi hands it to a dynamic
    provider (``azure-native:clientId`` ...); values come back as strings, unset ones
    left out.
    """
    env = os.environ if env is None else env
    found: dict[str, str] = {}
    for key, variables in _IDENTITY_KEYS.items():
        value = config(f"{_PROVIDER_NAMESPACE}:{key}") if config else None
        if value is None or value == "":
            value = next((env[v] for v in variables if env.get(v)), None)
        if value is not None and value != "":
            found[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return found


def credential(
    config: Callable[[str], Any] | None = None, env: Mapping[str, str] | None = None
) -> TokenCredential:
    """Who signs the requests: ``LLMOPS_ARM_TOKEN``, else azure-native's identity, else az login.

    A service principal (client secret, or OIDC federation through ``useOidc`` with a
    token, a token file or a CI runner's token request) or a managed identity
    (``useMsi``) from the stack's configuration or the ``ARM_*`` variables; otherwise
    ``DefaultAzureCredential``, which reads ``AZURE_*``, workload identity, managed
    identity and the Azure CLI.
    """
    env = os.environ if env is None else env
    token = env.get(ARM_TOKEN_ENV, "").strip()
    if token:
        return StaticTokenCredential(token)

    from azure import identity

    # Its chain logs each failed attempt as a multi-line warning; the failure is
    # reported once, as one line, by llmops_infra.azure_api.clients.ArmSession.
    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    found = identity_settings(config, env)
    client_id, tenant = found.get("clientId"), found.get("tenantId")
    if client_id and tenant and found.get("clientSecret"):
        return identity.ClientSecretCredential(tenant, client_id, found["clientSecret"])
    if found.get("useOidc", "").lower() == "true" and client_id and tenant:
        assertion = _oidc_assertion(found)
        if assertion is not None:
            return identity.ClientAssertionCredential(tenant, client_id, assertion)
    if found.get("useMsi", "").lower() == "true":
        return identity.ManagedIdentityCredential(client_id=client_id)
    return identity.DefaultAzureCredential(exclude_interactive_browser_credential=True)


def _oidc_assertion(found: Mapping[str, str]) -> Callable[[], str] | None:
    """The federated token, fetched when Azure AD asks (a file or a runner's token rotates)."""
    if found.get("oidcToken"):
        value = found["oidcToken"]
        return lambda: value
    if found.get("oidcTokenFilePath"):
        path = Path(found["oidcTokenFilePath"])
        return lambda: _read_token_file(path)
    if found.get("oidcRequestToken") and found.get("oidcRequestUrl"):
        url, bearer = found["oidcRequestUrl"], found["oidcRequestToken"]
        return lambda: _request_id_token(url, bearer)
    return None


def _read_token_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise _federation_error(
            f"cannot read the OIDC token file {path} ({err.strerror})"
        ) from None


def _request_id_token(url: str, bearer: str) -> str:
    """Ask a CI runner for an ID token for Azure AD (GitHub Actions' documented exchange)."""
    import json
    import urllib.error
    import urllib.request

    separator = "&" if urllib.parse.urlsplit(url).query else "?"
    audience = urllib.parse.quote(_FEDERATION_AUDIENCE, safe="")
    request = urllib.request.Request(
        f"{url}{separator}audience={audience}",
        headers={"Authorization": f"Bearer {bearer}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            value = json.loads(answer.read()).get("value")
    except (OSError, ValueError, AttributeError) as err:
        if isinstance(err, urllib.error.HTTPError):
            err.close()  # it holds the answer's connection
        # The URL's query may carry a runner's parameters: name only its host.
        host = urllib.parse.urlsplit(url).hostname
        raise _federation_error(
            f"cannot get an OIDC token from {host} ({first_line(err)})"
        ) from None
    if not isinstance(value, str) or not value:
        raise _federation_error("the OIDC token request answered without a token")
    return value


def _federation_error(message: str) -> Exception:
    from azure.core.exceptions import ClientAuthenticationError

    return ClientAuthenticationError(message)
