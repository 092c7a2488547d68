"""The Azure identity that deploys the stack, handed to every part that signs in as it.

Pulumi's azure-native provider finds its identity in three ways: the Azure CLI
login, ``ARM_*`` environment variables, or the stack's ``azure-native:``
configuration (``clientId``, ``clientSecret`` as a secret, ``tenantId``, or
OIDC through ``useOidc``). The first two reach every tool on the machine; the
third reaches only azure-native. So the program reads it here and passes the
same identity to the Databricks provider, which signs in to the new workspace.
(The purge reads it itself when it runs: the engine hands a dynamic provider
the stack's configuration.) The secret stays a Pulumi secret throughout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Final

import pulumi

__all__ = ["AZURE_CLI_APP_ID", "AzureIdentity"]

#: The Azure CLI's well-known application id: what the client configuration reports
#: as its client id after ``az login`` (a user), never for a service principal.
AZURE_CLI_APP_ID: Final = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"


@dataclass(frozen=True)
class AzureIdentity:
    """A service principal from the stack's ``azure-native:`` configuration, if any."""

    client_id: str | None = None
    """``azure-native:clientId``."""
    client_secret: pulumi.Output[str] | None = None
    """``azure-native:clientSecret``, a Pulumi secret."""
    tenant_id: str | None = None
    """``azure-native:tenantId``."""
    use_oidc: bool = False
    """``azure-native:useOidc``: federated credentials instead of a secret."""
    oidc_request_url: str | None = None
    """``azure-native:oidcRequestUrl``: where a CI runner hands out its OIDC token."""
    oidc_request_token: pulumi.Output[str] | None = None
    """``azure-native:oidcRequestToken``, a Pulumi secret: the bearer for that request."""
    use_msi: bool = False
    """``azure-native:useMsi``: the machine's managed identity."""

    @classmethod
    def from_stack_config(cls) -> AzureIdentity:
        """What ``azure-native:`` configuration the stack sets (nothing: CLI or ARM_*)."""
        config = pulumi.Config("azure-native")
        return cls(
            client_id=config.get("clientId") or None,
            client_secret=config.get_secret("clientSecret"),
            tenant_id=config.get("tenantId") or None,
            use_oidc=bool(config.get_bool("useOidc")),
            oidc_request_url=config.get("oidcRequestUrl") or None,
            oidc_request_token=config.get_secret("oidcRequestToken"),
            use_msi=bool(config.get_bool("useMsi")),
        )

    def principal_type(self, client_id: pulumi.Input[str]) -> pulumi.Output[str]:
        """``User`` or ``ServicePrincipal``, for a role assignment to the deploying identity.

        The client configuration names no principal type, but its client id does tell:
        after ``az login`` it is the Azure CLI's own application id (a user); a service
        principal or managed identity reports its own. A service principal set in the
        stack's configuration or the ``ARM_*`` variables settles it first.
        """
        environment = os.environ
        explicit = (
            self.client_id
            or self.use_oidc
            or self.use_msi
            or environment.get("ARM_CLIENT_ID")
            or environment.get("ARM_USE_MSI", "").lower() == "true"
            or environment.get("ARM_USE_OIDC", "").lower() == "true"
        )
        return pulumi.Output.from_input(client_id).apply(
            lambda cid: "ServicePrincipal" if explicit or cid != AZURE_CLI_APP_ID else "User"
        )

    def databricks_provider_args(self) -> dict[str, Any]:
        """The same identity for ``pulumi_databricks.Provider`` (empty: the provider then
        finds the Azure CLI login or the ``ARM_*`` variables itself, as azure-native does)."""
        args: dict[str, Any] = {}
        if self.client_id:
            args["azure_client_id"] = self.client_id
        if self.tenant_id:
            args["azure_tenant_id"] = self.tenant_id
        if self.use_oidc or os.environ.get("ARM_USE_OIDC", "").lower() == "true":
            args.update(self._oidc_args())
        elif self.use_msi:
            args["azure_use_msi"] = True
        elif self.client_secret is not None:
            args["azure_client_secret"] = self.client_secret
        return args

    def _oidc_args(self) -> dict[str, Any]:
        """Federated sign-in for the Databricks provider, which asks a CI runner for the token.

        Its Azure OIDC (``github-oidc-azure``) takes the token from a token request
        (GitHub Actions' ``ACTIONS_ID_TOKEN_REQUEST_*``, or the request URL and token
        given here); a token handed over as such (``oidcToken``, ``oidcTokenFilePath``)
        reaches azure-native and the purge but has no way into it. Stop before anything
        is created rather than fail half-way through ``up``.
        """
        args: dict[str, Any] = {"auth_type": "github-oidc-azure"}
        if self.oidc_request_url:
            args["actions_id_token_request_url"] = self.oidc_request_url
            if self.oidc_request_token is not None:
                args["actions_id_token_request_token"] = self.oidc_request_token
            return args
        if os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL"):
            return args  # the provider reads GitHub Actions' request variables itself
        raise pulumi.RunError(
            "invalid stack configuration: OIDC sign-in (azure-native:useOidc or ARM_USE_OIDC) "
            "needs a token request the "
            "Databricks provider can use too (GitHub Actions' ACTIONS_ID_TOKEN_REQUEST_URL, or "
            "azure-native:oidcRequestUrl and oidcRequestToken); a bare OIDC token "
            "(oidcToken, oidcTokenFilePath) cannot sign in to the workspace. Sign in with "
            "`az login` or a client secret (azure-native:clientSecret or ARM_CLIENT_SECRET) instead"
        )
