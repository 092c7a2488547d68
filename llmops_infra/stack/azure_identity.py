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

import base64
import binascii
import json
import os
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_azure_native import authorization

from llmops_infra.stack.config import PrincipalType

__all__ = ["AzureIdentity", "deployer_principal_type", "principal_type_of_token"]


def deployer_principal_type(configured: PrincipalType | None) -> PrincipalType:
    """The deploying identity's principal type: ``llmops:deployerPrincipalType``, else its token's.

    Asked before any resource is registered (a plain, awaited invoke), so a keyless
    deploy that cannot go through stops with nothing changed. azure-native sends
    ``User`` whenever a role assignment states no type, so a type must be stated.
    """
    if configured is not None:
        return configured
    found = principal_type_of_token(authorization.get_client_token().token)
    if found is None:
        raise pulumi.RunError(
            "invalid stack configuration: the deploying identity's access token does not say "
            "whether it is a user or an application; set llmops:deployerPrincipalType to User "
            "or ServicePrincipal"
        )
    return found


def principal_type_of_token(token: str) -> PrincipalType | None:
    """``User`` or ``ServicePrincipal``: what kind of identity an Entra ID access token is for.

    The client id cannot tell (a person signs in through the Azure CLI, Visual Studio
    Code, a browser flow or azure-identity's default credential, each its own app id);
    the token can. Entra ID's access-token claims: a delegated token, issued to a
    signed-in user, carries ``scp`` (the delegated scopes); an application's token
    (service principal, managed identity) carries no ``scp`` (``roles`` instead, when the
    app has any) and, where present, ``idtyp`` ``app`` (Microsoft identity platform,
    "Access token claims reference", checked 2026-12-05). The payload is base64url-decoded
    without verifying the signature: the token came from the deployer's own provider, and
    only its kind is wanted. The token is never kept, returned or printed. None when it
    is not a token this can read.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        return None
    if not isinstance(claims, dict):
        return None
    if claims.get("idtyp") == "app":
        return "ServicePrincipal"
    if claims.get("scp"):
        return "User"
    # An Entra ID token names its principal (oid); without scp it is an application's.
    return "ServicePrincipal" if claims.get("oid") else None


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
