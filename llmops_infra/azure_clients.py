"""Azure Resource Manager through ``azure-mgmt-cognitiveservices``: endpoint, credentials, errors.

Shared by ``python -m llmops_infra preflight`` and the purge on destroy
(:mod:`llmops_infra.purge`). The SDK brings what a Resource Manager client
needs (retries honouring ``Retry-After``, paging through ``nextLink``,
long-running operation polling); this module only decides where to send the
requests and with which identity, as DESIGN.md fixes it:

- ``LLMOPS_ARM_ENDPOINT`` (a sovereign cloud, a local fake) else
  ``https://management.azure.com``; the token's scope follows the endpoint.
- ``LLMOPS_ARM_TOKEN`` (e.g. from ``az account get-access-token``) else the
  identity Pulumi's azure-native provider would use: its stack configuration
  (``azure-native:clientId`` ...), then the ``ARM_*`` variables, then
  azure-identity's ``DefaultAzureCredential`` (``az login``, ``AZURE_*``,
  managed identity), never a browser.

Every failure leaves here as one :class:`ArmError` line naming the problem.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from workload.errors import first_line

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, TokenCredential
    from azure.core.exceptions import AzureError, HttpResponseError
    from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
    from azure.mgmt.cognitiveservices.models import Account, Model, Usage

__all__ = [
    "ARM_ENDPOINT_ENV",
    "ARM_TOKEN_ENV",
    "DEFAULT_ENDPOINT",
    "ArmError",
    "ArmSession",
    "ArmUnavailable",
    "StaticTokenCredential",
    "arm_endpoint",
    "credential",
    "credential_scopes",
    "deleted_account_path",
    "identity_keys",
    "identity_settings",
    "purge_command",
]

#: Overrides the Resource Manager base URL (sovereign clouds, local fakes).
ARM_ENDPOINT_ENV: Final = "LLMOPS_ARM_ENDPOINT"
#: A bearer token for Resource Manager, used as is.
ARM_TOKEN_ENV: Final = "LLMOPS_ARM_TOKEN"
DEFAULT_ENDPOINT: Final = "https://management.azure.com"
#: Hosts a bearer token may reach over plain http: a local fake, never the network.
_LOOPBACK: Final = frozenset({"localhost", "127.0.0.1", "::1"})

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

T = TypeVar("T")


class ArmError(Exception):
    """Resource Manager refused a request, or it still failed after the SDK's retries."""

    def __init__(self, message: str, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status, when Azure answered at all."""
        self.code = code
        """Azure's error code (``AuthorizationFailed`` ...), when it sent one."""


class ArmUnavailable(ArmError):
    """No usable credentials, or Resource Manager could not be reached."""


def arm_endpoint(env: Mapping[str, str] | None = None) -> str:
    """``LLMOPS_ARM_ENDPOINT`` without its trailing slash, else the public cloud's.

    Plain http is refused except on the loopback interface: a bearer token never
    crosses the network in clear.
    """
    env = os.environ if env is None else env
    endpoint = (env.get(ARM_ENDPOINT_ENV) or "").strip().rstrip("/") or DEFAULT_ENDPOINT
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme == "https" and parts.hostname:
        return endpoint
    if parts.scheme == "http" and parts.hostname in _LOOPBACK:
        return endpoint
    raise ArmUnavailable(
        f"{ARM_ENDPOINT_ENV}={endpoint!r} is not usable: give an https:// URL "
        "(plain http only for a local fake on localhost or 127.0.0.1)"
    )


def deleted_account_path(
    subscription_id: str, resource_group_name: str, location: str, account_name: str
) -> str:
    """The ARM path of a soft-deleted Cognitive Services account (``DeletedAccounts_Get/Purge``).

    The purge resource's id in Pulumi's state, so it never changes.
    """
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.CognitiveServices"
        f"/locations/{location}/resourceGroups/{resource_group_name}"
        f"/deletedAccounts/{account_name}"
    )


def purge_command(account_name: str, resource_group_name: str, location: str) -> str:
    """The Azure CLI command that purges one soft-deleted account by hand."""
    return (
        f"az cognitiveservices account purge --name {account_name} "
        f"--resource-group {resource_group_name} --location {location}"
    )


def credential_scopes(endpoint: str) -> list[str]:
    """The token scope for an endpoint: a known cloud's own, else ``<endpoint>/.default``.

    The known clouds come from the SDK's table: US Government's scope is not its
    endpoint's, so the table wins where it knows.
    """
    from azure.core import AzureClouds
    from azure.mgmt.core.tools import get_arm_endpoints

    for cloud in AzureClouds:
        known = get_arm_endpoints(cloud)
        if known["resource_manager"].rstrip("/") == endpoint.rstrip("/"):
            return list(known["credential_scopes"])
    return [f"{endpoint.rstrip('/')}/.default"]


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
    # reported once, as one line, by ArmSession.
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


class ArmSession:
    """The Cognitive Services management client, pointed and signed as DESIGN.md says.

    Each method returns plain lists (pages already followed) and raises only
    :class:`ArmError`, so callers deal with one exception and one line of text.
    """

    def __init__(
        self,
        subscription: str,
        cred: TokenCredential | None = None,
        *,
        endpoint: str | None = None,
        **client_kwargs: Any,
    ) -> None:
        """``client_kwargs`` go to the SDK client (e.g. ``retry_on_status_codes``)."""
        from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

        self.endpoint = arm_endpoint({ARM_ENDPOINT_ENV: endpoint} if endpoint else None)
        # Per request: the SDK refuses to send a bearer token over http unless told, and
        # a local fake is http (arm_endpoint allows that on loopback only).
        self._call: dict[str, Any] = (
            {"enforce_https": False} if self.endpoint.startswith("http://") else {}
        )
        self.client: CognitiveServicesManagementClient = CognitiveServicesManagementClient(
            cred or credential(),
            subscription,
            base_url=self.endpoint,
            credential_scopes=credential_scopes(self.endpoint),
            **client_kwargs,
        )

    def __enter__(self) -> ArmSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

    def deleted_accounts(self) -> list[Account]:
        """Every soft-deleted Cognitive Services account of the subscription."""
        return self._run(
            "list the soft-deleted accounts",
            lambda: list(self.client.deleted_accounts.list(**self._call)),
        )

    def usages(self, location: str) -> list[Usage]:
        """The subscription's quotas and their use in a region."""
        return self._run(
            f"read the quota in {location}",
            lambda: list(self.client.usages.list(location, **self._call)),
        )

    def models(self, location: str) -> list[Model]:
        """The models (versions, SKUs) that accounts in a region can deploy."""
        return self._run(
            f"list the models offered in {location}",
            lambda: list(self.client.models.list(location, **self._call)),
        )

    def purge(
        self, location: str, resource_group: str, account: str, timeout: float = 1800.0
    ) -> bool:
        """Purge one soft-deleted account and wait for it; False when there was none (404)."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        what = f"purge the deleted account {account}"

        def run() -> bool:
            try:
                poller = self.client.deleted_accounts.begin_purge(
                    location, resource_group, account, **self._call
                )
            except ResourceNotFoundError:
                return False
            try:
                poller.result(timeout=timeout)
            except HttpResponseError as err:  # the operation itself ended Failed or Canceled
                code, message = _code_and_message(err)
                raise ArmError(
                    f"cannot {what}: the operation failed in Azure"
                    + (f": {code}" if code else "")
                    + (f": {message}" if message else ""),
                    code=code,
                ) from None
            if not poller.done():
                raise ArmError(
                    f"cannot {what}: still running after {timeout:.0f} s; "
                    "check the Azure portal's activity log"
                )
            return True

        return self._run(what, run)

    def _run(self, what: str, call: Callable[[], T]) -> T:
        from azure.core.exceptions import AzureError

        try:
            return call()
        except AzureError as err:
            raise _arm_error(what, err, self.endpoint) from None


def _code_and_message(err: HttpResponseError) -> tuple[str, str]:
    """Azure's error code and the first line of its message, from the response's body."""
    detail = getattr(err, "error", None)
    code = str(getattr(detail, "code", "") or "")
    message = first_line(str(getattr(detail, "message", "") or "")) if detail else ""
    if not message and not code and err.reason:
        message = first_line(err.reason)
    return code, message


def _arm_error(what: str, err: AzureError, endpoint: str) -> ArmError:
    """One line from an azure-core error: Azure's status, code and message, never a header."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    status = getattr(err, "status_code", None)
    if isinstance(err, HttpResponseError) and status is not None:
        code, message = _code_and_message(err)
        text = f"cannot {what}: HTTP {status}"
        text += f" {code}" if code else ""
        text += f": {message}" if message else ""
        return ArmError(text, status=status, code=code)
    if isinstance(err, ClientAuthenticationError):
        # Raised by the credential before any request: nobody to sign as.
        return ArmUnavailable(
            "no usable Azure credentials: run `az login`, set ARM_CLIENT_ID, "
            f"ARM_CLIENT_SECRET and ARM_TENANT_ID, or {ARM_TOKEN_ENV} "
            f"({type(err).__name__}: {first_line(err)})"
        )
    if isinstance(err, ServiceRequestError):
        return ArmUnavailable(
            f"cannot reach Azure Resource Manager at {endpoint} ({first_line(err)})"
        )
    if isinstance(err, ServiceResponseError):
        return ArmUnavailable(
            f"cannot {what}: no answer from Azure Resource Manager at {endpoint} "
            f"({first_line(err)})"
        )
    return ArmError(f"cannot {what}: {type(err).__name__}: {first_line(err)}")
