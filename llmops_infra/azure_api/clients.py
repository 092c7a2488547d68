"""Azure Resource Manager through ``azure-mgmt-cognitiveservices``: endpoint, session, errors.

Shared by ``python -m llmops_infra preflight`` and the purge on destroy
(:mod:`llmops_infra.purge`). The SDK brings what a Resource Manager client
needs (retries honouring ``Retry-After``, paging through ``nextLink``,
long-running operation polling); this module only decides where to send the
requests and with which identity, as docs/reference.md fixes it:

- ``LLMOPS_ARM_ENDPOINT`` (a sovereign cloud, a local fake) else
  ``https://management.azure.com``; the token's scope follows the endpoint.
- signed as :mod:`llmops_infra.azure_api.credentials` decides (``LLMOPS_ARM_TOKEN``,
  else the identity Pulumi's azure-native provider would use).

Every failure leaves here as one :class:`ArmError` line naming the problem.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

from llmops_infra.azure_api.credentials import ARM_TOKEN_ENV
from workload.errors import first_line

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.exceptions import AzureError, HttpResponseError
    from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
    from azure.mgmt.cognitiveservices.models import Account, Model, Usage

__all__ = [
    "ARM_ENDPOINT_ENV",
    "DEFAULT_ENDPOINT",
    "ArmError",
    "ArmSession",
    "ArmUnavailable",
    "arm_endpoint",
    "credential_scopes",
    "deleted_account_path",
    "purge_command",
]

#: Overrides the Resource Manager base URL (sovereign clouds, local fakes).
ARM_ENDPOINT_ENV: Final = "LLMOPS_ARM_ENDPOINT"
DEFAULT_ENDPOINT: Final = "https://management.azure.com"
#: Hosts a bearer token may reach over plain http: a local fake, never the network.
_LOOPBACK: Final = frozenset({"localhost", "127.0.0.1", "::1"})
#: Microsoft.Databricks/workspaces' API version for reading a workspace (GA).
_DATABRICKS_API_VERSION: Final = "2024-05-01"

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


class ArmSession:
    """The Cognitive Services management client, pointed and signed as docs/reference.md says.

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
        """``client_kwargs`` go to the SDK client; ``retry_*`` ones to its retry policy."""
        from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

        from llmops_infra.azure_api.credentials import credential

        self.endpoint = arm_endpoint({ARM_ENDPOINT_ENV: endpoint} if endpoint else None)
        # Per request: the SDK refuses to send a bearer token over http unless told, and
        # a local fake is http (arm_endpoint allows that on loopback only).
        self._call: dict[str, Any] = (
            {"enforce_https": False} if self.endpoint.startswith("http://") else {}
        )
        retry = {k: client_kwargs.pop(k) for k in list(client_kwargs) if k.startswith("retry_")}
        self.client: CognitiveServicesManagementClient = CognitiveServicesManagementClient(
            cred or credential(),
            subscription,
            base_url=self.endpoint,
            credential_scopes=credential_scopes(self.endpoint),
            retry_policy=_closing_retry_policy(**retry),
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

    def workspace(self, resource_id: str) -> dict[str, Any]:
        """An Azure Databricks workspace as Resource Manager describes it (``location``,
        ``sku`` ...); ArmError with status 404 when there is none."""
        from azure.core.rest import HttpRequest

        what = f"read the workspace {resource_id}"

        def run() -> dict[str, Any]:
            # The client's own pipeline (endpoint, credential, retries), for a type this SDK
            # has no operation for: the generated clients' documented way
            # (https://aka.ms/azsdk/dpcodegen/python/send_request).
            request = HttpRequest("GET", f"{resource_id}?api-version={_DATABRICKS_API_VERSION}")
            response = self.client._send_request(request, **self._call)
            try:
                body = response.json()
            except ValueError:
                body = {}
            if response.status_code == 200 and isinstance(body, dict):
                return body
            error = body.get("error") if isinstance(body, dict) else None
            code = str(error.get("code") or "") if isinstance(error, dict) else ""
            message = first_line(str(error.get("message") or "")) if isinstance(error, dict) else ""
            raise ArmError(
                f"cannot {what}: HTTP {response.status_code}"
                + (f" {code}" if code else "")
                + (f": {message}" if message else ""),
                status=response.status_code,
                code=code,
            )

        return self._run(what, run)

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


def _closing_retry_policy(**settings: Any) -> Any:
    """azure-core's RetryPolicy, closing each answer it is about to retry.

    A long-running operation's first request is streamed; azure-core drops a retried
    streamed answer unread, and its connection stays open until garbage collection.
    """
    from azure.core.pipeline.policies import RetryPolicy

    class ClosingRetryPolicy(RetryPolicy[Any, Any]):
        def sleep(self, settings: Any, transport: Any, response: Any = None) -> None:
            if response is not None:
                response.http_response.close()  # its headers (Retry-After) stay readable
            super().sleep(settings, transport, response)

    return ClosingRetryPolicy(**settings)


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
